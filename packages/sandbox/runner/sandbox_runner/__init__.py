"""The in-container runner of @research/sandbox: python3 (>= 3.8) standard library only."""
