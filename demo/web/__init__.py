"""The Gradio page (page.py: image, video and webcam tabs, the API) and its live webcam path (live.py)."""
