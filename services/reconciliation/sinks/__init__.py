"""Where alerts go: the alerts topic (always) and, from there, a signed webhook for SOC tools (optional)."""
