"""Ekspresi's front ends on one pipeline: pipeline/ (faces, emotions, tracking, drawing), web/ (the
Gradio page and its live webcam), guards/ (what the server accepts, keeps and refuses), and the
command line, predict.py. app.py at the repository root serves the page."""
