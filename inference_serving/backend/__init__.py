"""Engine processes and their protocols (our step protocol, ASTRA-sim's interactive one) and their inputs."""
