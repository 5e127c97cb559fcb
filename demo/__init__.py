"""Ekspresi demo: MediaPipe face detection + a saved Keras emotion model, in Gradio."""
