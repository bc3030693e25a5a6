"""The web UI: a Gradio app mounted into the API server."""
