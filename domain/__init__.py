"""What a case is about, shared by every layer: the API validates it, the workflow carries it, the read model
stores it. Plain types only (no I/O, no clock), so the workflow sandbox can pass them through."""
