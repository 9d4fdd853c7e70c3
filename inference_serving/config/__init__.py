"""One run configuration (every flag, default and check) and YAML experiment files."""
