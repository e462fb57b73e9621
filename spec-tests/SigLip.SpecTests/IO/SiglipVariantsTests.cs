using SigLip.Reference.Models;

namespace SigLip.SpecTests.IO;

public sealed class SiglipVariantsTests
{
    [Fact]
    public void B16_224_has_the_parameter_count_HF_transformers_reports()
    {
        // Measured with transformers 5.17 (../shared/notes/siglip-numerics.md): 203,155,970 in all,
        // vision 92,884,224, text 110,271,744, plus t' and b.
        var layout = ParameterLayout.For(SiglipVariants.Base16_224.Config);
        Assert.Equal(203_155_970L, ParameterLayout.Count(SiglipVariants.Base16_224.Config));
        Assert.Equal(92_884_224L, layout.Where(p => p.Tower == Tower.Image).Sum(p => p.Size));
        Assert.Equal(110_271_744L, layout.Where(p => p.Tower == Tower.Text).Sum(p => p.Size));
        Assert.Equal(SiglipConfig.Base16_224, SiglipVariants.Base16_224.Config);
    }

    [Fact]
    public void Every_variant_is_a_valid_config_and_is_found_by_name()
    {
        foreach (var v in SiglipVariants.All)
        {
            // So400m/14-384: 384 is not a multiple of 14; HF's convolution drops the last 6 pixels
            // and keeps 27 x 27 patches, and so does the reference.
            v.Config.Validate();
            Assert.Same(v, SiglipVariants.Find(v.Name));
            Assert.Same(v, SiglipVariants.Find(v.HfRepository));
        }
        var ex = Assert.Throws<ArgumentException>(() => SiglipVariants.Find("H/14"));
        Assert.Contains("B/16-224", ex.Message);
    }

    [Fact]
    public void So400m_384_keeps_27_by_27_patches_as_HF_does()
    {
        var v = SiglipVariants.All.Single(x => x.Config.Vision.PatchSize == 14 && x.Config.Vision.ImageSize == 384);
        Assert.Equal(27, v.Config.Vision.PatchesPerSide);
        Assert.Equal(729, v.Config.Vision.NumPatches);
    }

    [Fact]
    public void Base_variants_differ_only_in_image_size_so_only_position_embeddings_grow()
    {
        // 256 / 384 / 512 px with patch 16: 256, 576, 1024 patches; each extra patch adds one
        // 768-wide position embedding row.
        long b224 = SiglipVariants.Base16_224.ParameterCount;
        Assert.Equal(b224 + (256 - 196) * 768L, SiglipVariants.Base16_256.ParameterCount);
        Assert.Equal(b224 + (576 - 196) * 768L, SiglipVariants.Base16_384.ParameterCount);
        Assert.Equal(b224 + (1024 - 196) * 768L, SiglipVariants.Base16_512.ParameterCount);
    }

    [Fact]
    public void So400m_224_has_16_text_positions_and_384_has_64()
    {
        // google/siglip-so400m-patch14-224 was trained with 16 text tokens (open_clip's
        // ViT-SO400M-14-SigLIP: context_length 16); the -384 checkpoint uses HF's default 64.
        Assert.Equal(16, SiglipVariants.So400m14_224.Config.Text.MaxPositionEmbeddings);
        Assert.Equal(64, SiglipVariants.So400m14_384.Config.Text.MaxPositionEmbeddings);
        // Only the image size and the text position table differ between the two.
        long perPatch = 1152, perPosition = 1152;
        Assert.Equal(SiglipVariants.So400m14_224.ParameterCount + (729 - 256) * perPatch + (64 - 16) * perPosition,
                     SiglipVariants.So400m14_384.ParameterCount);
    }
}
