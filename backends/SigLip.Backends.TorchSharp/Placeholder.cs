namespace SigLip.Backends.TorchSharp; internal static class Placeholder {}
