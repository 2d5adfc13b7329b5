"""deepcuts as a service: storage, model service, HTTP API and web page."""
