"""The capacity study: how far each recurrent model counts under truncated
BPTT. Run from the repository's root: python -m study.sweep, study.counter."""
