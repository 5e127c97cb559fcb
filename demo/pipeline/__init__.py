"""The analysis every front end shares: decode an image or a video, find the faces (MediaPipe),
classify each crop (the selected model), track faces over frames, draw the result.
Imports nothing from demo.web, demo.guards or the command line."""
