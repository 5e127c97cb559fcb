"""Ekspresi trainer: class-folder face images in, evaluated Keras models out."""
