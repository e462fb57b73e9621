namespace SigLip.Data;

public static partial class PretrainedFolder
{
    public const string SpieceFileName = "spiece.model";
}
