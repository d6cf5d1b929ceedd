"""Builder: definition meta-schemas, checks, drafts and publishing, and their API."""
