"""The production champion as a service (FastAPI) and a command line (`skinseg`)."""
