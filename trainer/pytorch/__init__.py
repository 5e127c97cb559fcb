"""The trainer's PyTorch path: ResNet50 and MobileNetV2 as trainer.models lays them out, trained in
PyTorch (bfloat16 on a CPU with AMX, or a GPU) and converted into the same .keras files."""
