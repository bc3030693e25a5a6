"""HTTP API over the knowledge base; thin, all logic lives in kb/."""
