"""Federated jobs on NVIDIA FLARE: approved algorithms, the embedded federation, site policies,
the workbench-federation hub service and its notebook client. See README.md in this folder."""
