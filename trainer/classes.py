"""The one place that defines the emotion classes and their order.

Every model the trainer writes stores this list beside it (NAME.json), so the
demo reads class names from the model, never from here.
"""

CLASS_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASS_NAMES)
