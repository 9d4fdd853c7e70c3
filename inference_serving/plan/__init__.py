"""The iteration plan (objects), its text-trace export and the Chakra writer."""
