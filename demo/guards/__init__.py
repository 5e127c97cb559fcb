"""The server's guards around Gradio, one job to a file: what it accepts (body_limit, gate,
closed_routes), how long it waits (queue_limits), what it keeps and for how long (server_files,
results, no_store, garbage). SECURITY.md says what they add up to."""
