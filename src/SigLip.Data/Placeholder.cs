namespace SigLip.Data; internal static class Placeholder {}
