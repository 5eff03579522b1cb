"""The benchmark room: inference, service and pruning benchmarks and their peers.

Only this package (and `neurogrs.pruning`) may import TensorFlow, Keras, LiteRT, ONNX Runtime
or tf2onnx; nothing in the product imports this package except the CLI's `bench` command.
"""
