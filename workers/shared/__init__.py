"""Shared by the API and worker processes: connections, defaults and job options, logging, the job serializer."""
