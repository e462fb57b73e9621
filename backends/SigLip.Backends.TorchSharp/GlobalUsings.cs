// The contract's host types, named without importing SigLip.Reference (whose Tensor would clash with torch.Tensor).
global using HostTensor = SigLip.Reference.Tensor;
global using NamedTensors = SigLip.Reference.NamedTensors;
global using TokenIds = SigLip.Reference.TokenIds;
global using SiglipBatch = SigLip.Reference.SiglipBatch;
