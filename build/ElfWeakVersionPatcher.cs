// Makes TorchSharp's native library load on hosts whose libstdc++ is older than the one it was built
// against (Debian 12 / Ubuntu 22.04 ship GLIBCXX_3.4.30; libLibTorchSharp.so 0.107 asks for
// GLIBCXX_3.4.32). The only symbol of that version it uses is std::ios_base_library_init(), which GCC
// 13+ headers reference just to pin the libstdc++ version; nothing calls it. Two in-place edits of a
// few bytes (see ../../shared/notes/torchsharp-linux.md):
//   1. .gnu.version_r: set VER_FLG_WEAK on the GLIBCXX_3.4.32 need, so the loader only warns;
//   2. .dynsym: make _ZSt21ios_base_library_initv a weak undefined symbol with version index 1 (global).
// The same file is compiled by MSBuild (RoslynCodeTaskFactory, see SigLip.PatchLibTorchSharp.targets) and, with
// SIGLIP_ELF_PATCHER_TESTS defined, into the spec tests. It targets netstandard2.0 there: plain C#,
// byte arrays, no spans. ELF64 little-endian only (x86-64, aarch64).
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace SigLip.Build
{
    /// <summary>What a patch did (or would do) to one file.</summary>
    public sealed class ElfPatchResult
    {
        public ElfPatchResult(bool changed, IList<string> edits) { Changed = changed; Edits = edits; }
        /// <summary>True when at least one byte was changed.</summary>
        public bool Changed { get; }
        /// <summary>One line per edit made, e.g. "vna_flags of GLIBCXX_3.4.32: 0x0 -> 0x2".</summary>
        public IList<string> Edits { get; }
    }

    /// <summary>Whether the host's libstdc++ needs the patch, and why.</summary>
    public sealed class HostCheck
    {
        public HostCheck(bool? needsPatch, string reason) { NeedsPatch = needsPatch; Reason = reason; }
        public bool? NeedsPatch { get; }
        public string Reason { get; }
    }

    /// <summary>One entry of .gnu.version_r as read back from a file.</summary>
    public sealed class ElfVersionNeed
    {
        public ElfVersionNeed(string file, string name, ushort flags, ushort index) { File = file; Name = name; Flags = flags; Index = index; }
        public string File { get; }
        public string Name { get; }
        public ushort Flags { get; }
        /// <summary>vna_other: the version index symbols use in .gnu.version.</summary>
        public ushort Index { get; }
    }

    /// <summary>One dynamic symbol as read back from a file.</summary>
    public sealed class ElfDynamicSymbol
    {
        public ElfDynamicSymbol(string name, int binding, bool undefined, ushort versionIndex)
        { Name = name; Binding = binding; Undefined = undefined; VersionIndex = versionIndex; }
        public string Name { get; }
        /// <summary>STB_LOCAL 0, STB_GLOBAL 1, STB_WEAK 2.</summary>
        public int Binding { get; }
        public bool Undefined { get; }
        /// <summary>The symbol's .gnu.version entry without the hidden bit (0 local, 1 global, else a need/definition index).</summary>
        public ushort VersionIndex { get; }
    }

    /// <summary>Reads and edits the symbol versioning sections of an ELF64 little-endian shared library.</summary>
    public static class ElfWeakVersionPatcher
    {
        public const string GlibcxxVersion = "GLIBCXX_3.4.32";
        public const string IosBaseLibraryInit = "_ZSt21ios_base_library_initv";
        public const ushort VerFlagWeak = 0x2;
        const int StbWeak = 2;
        const uint ShtDynsym = 11, ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;

        /// <summary>
        /// Patches <paramref name="path"/> in place (atomically: temporary file, then move) when it needs
        /// <see cref="GlibcxxVersion"/>. Idempotent: a patched file, or one that does not need the version,
        /// is left byte-for-byte and timestamp unchanged. The file's timestamp is kept, so an incremental
        /// copy from the package does not see a change.
        /// </summary>
        public static ElfPatchResult PatchFile(string path)
        {
            byte[] bytes = File.ReadAllBytes(path);
            ElfPatchResult result = Patch(bytes, path);
            if (!result.Changed) return result;
            DateTime stamp = File.GetLastWriteTimeUtc(path);
            string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "." + Path.GetFileName(path) + ".patching");
            File.WriteAllBytes(temp, bytes);
            File.SetLastWriteTimeUtc(temp, stamp);
            // A new inode: a process that has the old file mapped keeps its copy.
            if (File.Exists(path)) File.Delete(path);
            File.Move(temp, path);
            return result;
        }

        /// <summary>Patches the image in <paramref name="bytes"/> in place; <paramref name="where"/> names it in errors.</summary>
        public static ElfPatchResult Patch(byte[] bytes, string where)
        {
            var elf = new ElfImage(bytes, where);
            var edits = new List<string>();

            Section verneed = elf.Single(ShtGnuVerneed, ".gnu.version_r");
            Section dynsym = elf.Single(ShtDynsym, ".dynsym");
            Section versym = elf.Single(ShtGnuVersym, ".gnu.version");

            // 1. The version need entry.
            int vernauxOffset = -1;
            ushort versionIndex = 0;
            foreach (var aux in elf.VersionNeedEntries(verneed))
            {
                if (aux.Name != GlibcxxVersion) continue;
                vernauxOffset = aux.Offset;
                versionIndex = aux.Index;
            }
            if (vernauxOffset < 0) return new ElfPatchResult(false, edits); // does not need it: nothing to do
            ushort flags = elf.U16(vernauxOffset + 4);
            if ((flags & VerFlagWeak) == 0)
            {
                elf.PutU16(vernauxOffset + 4, (ushort)(flags | VerFlagWeak));
                edits.Add($"vna_flags of {GlibcxxVersion}: 0x{flags:x} -> 0x{flags | VerFlagWeak:x}");
            }

            // 2. The symbols bound to that version: only ios_base_library_init may be made weak; any
            //    other would be a real function the host lacks, and hiding it would crash later.
            bool found = false;
            var others = new List<string>();
            foreach (var sym in elf.DynamicSymbols(dynsym, versym))
            {
                if (sym.Name == IosBaseLibraryInit)
                {
                    found = true;
                    if (!sym.Undefined)
                        throw new InvalidDataException($"{where}: {IosBaseLibraryInit} is defined in this library; expected an undefined reference to libstdc++.");
                    if (sym.Binding != StbWeak)
                    {
                        byte info = bytes[sym.SymbolOffset + 4];
                        bytes[sym.SymbolOffset + 4] = (byte)((StbWeak << 4) | (info & 0xf));
                        edits.Add($"binding of {IosBaseLibraryInit}: {sym.Binding} -> {StbWeak} (weak)");
                    }
                    if (sym.RawVersion != 1)
                    {
                        elf.PutU16(sym.VersymOffset, 1);
                        edits.Add($".gnu.version of {IosBaseLibraryInit}: {sym.RawVersion} -> 1 (global)");
                    }
                }
                else if (sym.Undefined && (sym.RawVersion & 0x7fff) == versionIndex && versionIndex > 1)
                {
                    others.Add(sym.Name);
                }
            }
            if (others.Count > 0)
                throw new InvalidDataException($"{where}: besides {IosBaseLibraryInit}, these symbols need {GlibcxxVersion}: {string.Join(", ", others)}. " +
                    "They are real functions; making them weak would hide a missing definition. Use a host with a newer libstdc++ (GCC 13+).");
            if (!found && edits.Count > 0)
                throw new InvalidDataException($"{where}: needs {GlibcxxVersion} but has no dynamic symbol {IosBaseLibraryInit}; refusing to patch a library of unknown layout.");
            return new ElfPatchResult(edits.Count > 0, edits);
        }

        /// <summary>The version need entries (.gnu.version_r) of a file.</summary>
        public static IList<ElfVersionNeed> ReadVersionNeeds(string path)
        {
            var elf = new ElfImage(File.ReadAllBytes(path), path);
            var list = new List<ElfVersionNeed>();
            foreach (var s in elf.Sections(ShtGnuVerneed))
                foreach (var aux in elf.VersionNeedEntries(s))
                    list.Add(new ElfVersionNeed(aux.File, aux.Name, elf.U16(aux.Offset + 4), aux.Index));
            return list;
        }

        /// <summary>The dynamic symbols (.dynsym with .gnu.version) of a file.</summary>
        public static IList<ElfDynamicSymbol> ReadDynamicSymbols(string path)
        {
            var elf = new ElfImage(File.ReadAllBytes(path), path);
            var list = new List<ElfDynamicSymbol>();
            foreach (var s in elf.DynamicSymbols(elf.Single(ShtDynsym, ".dynsym"), elf.Single(ShtGnuVersym, ".gnu.version")))
                list.Add(new ElfDynamicSymbol(s.Name, s.Binding, s.Undefined, (ushort)(s.RawVersion & 0x7fff)));
            return list;
        }

        /// <summary>The version names a library defines (.gnu.version_d), e.g. GLIBCXX_3.4.30 for libstdc++.</summary>
        public static IList<string> ReadVersionDefinitions(string path)
        {
            var elf = new ElfImage(File.ReadAllBytes(path), path);
            var names = new List<string>();
            foreach (var s in elf.Sections(ShtGnuVerdef))
            {
                var strtab = elf.Header(s.Link);
                int offset = s.Offset;
                for (int i = 0; i < s.Info; i++)
                {
                    int cnt = elf.U16(offset + 6);
                    uint aux = elf.U32(offset + 12);
                    uint next = elf.U32(offset + 16);
                    if (cnt > 0) names.Add(elf.String(strtab, elf.U32(offset + (int)aux)));
                    if (next == 0) break;
                    offset += (int)next;
                }
            }
            return names;
        }

        /// <summary>Candidate paths of the libstdc++ the dynamic loader would pick on this host.</summary>
        public static IList<string> HostLibStdCxxCandidates() => new[]
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        };

        /// <summary>
        /// Whether this host's libstdc++ lacks <see cref="GlibcxxVersion"/> (so TorchSharp needs the patch).
        /// NeedsPatch is null when no libstdc++ was found; the reason says what was looked at.
        /// </summary>
        public static HostCheck CheckHost()
        {
            string reason;
            bool? needs = HostNeedsPatch(out reason);
            return new HostCheck(needs, reason);
        }

        static bool? HostNeedsPatch(out string reason)
        {
            foreach (var candidate in HostLibStdCxxCandidates())
            {
                if (!File.Exists(candidate)) continue;
                var defined = ReadVersionDefinitions(candidate);
                bool has = defined.Contains(GlibcxxVersion);
                string newest = defined.Count == 0 ? "none" : defined[defined.Count - 1];
                reason = has
                    ? $"{candidate} defines {GlibcxxVersion}"
                    : $"{candidate} lacks {GlibcxxVersion} (its last GLIBCXX version is {LastGlibcxx(defined) ?? newest})";
                return !has;
            }
            reason = "no libstdc++.so.6 found in " + string.Join(", ", HostLibStdCxxCandidates());
            return null;
        }

        static string? LastGlibcxx(IList<string> names)
        {
            string? best = null;
            Version? bestVersion = null;
            foreach (var n in names)
            {
                if (!n.StartsWith("GLIBCXX_", StringComparison.Ordinal)) continue;
                if (!Version.TryParse(n.Substring(8), out var v)) continue;
                if (bestVersion == null || v > bestVersion) { best = n; bestVersion = v; }
            }
            return best;
        }

        internal struct Section
        {
            public uint Type; public int Offset; public int Size; public int Link; public int Info; public int EntrySize; public string Name;
        }

        internal struct VersionAux { public string File; public string Name; public int Offset; public ushort Index; }

        internal struct SymbolView
        {
            public string Name; public int Binding; public bool Undefined; public int SymbolOffset; public int VersymOffset; public ushort RawVersion;
        }

        /// <summary>Bounds-checked little-endian views over the bytes of an ELF64 image.</summary>
        internal sealed class ElfImage
        {
            readonly byte[] _b;
            readonly string _where;
            readonly List<Section> _sections = new List<Section>();

            public ElfImage(byte[] bytes, string where)
            {
                _b = bytes;
                _where = where;
                if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
                    throw new InvalidDataException($"{where}: not an ELF file (the first bytes are not 0x7f 'E' 'L' 'F'); expected a Linux shared library such as libLibTorchSharp.so.");
                if (bytes[4] != 2) throw new InvalidDataException($"{where}: ELF class {bytes[4]}, expected 2 (ELF64).");
                if (bytes[5] != 1) throw new InvalidDataException($"{where}: ELF data encoding {bytes[5]}, expected 1 (little-endian).");
                long shoff = (long)U64(0x28);
                int shentsize = U16(0x3a), shnum = U16(0x3c), shstrndx = U16(0x3e);
                if (shentsize != 64) throw new InvalidDataException($"{where}: section header size {shentsize}, expected 64.");
                if (shoff <= 0 || shoff + (long)shnum * 64 > bytes.Length)
                    throw new InvalidDataException($"{where}: section headers at {shoff} (x{shnum}) lie outside the file of {bytes.Length} bytes: truncated?");
                for (int i = 0; i < shnum; i++)
                {
                    int h = (int)shoff + i * 64;
                    long off = (long)U64(h + 24), size = (long)U64(h + 32);
                    uint type = U32(h + 4);
                    const uint ShtNobits = 8;
                    if (type != ShtNobits && type != 0 && (off < 0 || size < 0 || off + size > bytes.Length))
                        throw new InvalidDataException($"{where}: section {i} [{off}, {off + size}) lies outside the file of {bytes.Length} bytes: truncated?");
                    _sections.Add(new Section
                    {
                        Type = type, Offset = (int)off, Size = (int)size,
                        Link = (int)U32(h + 40), Info = (int)U32(h + 44), EntrySize = (int)U64(h + 56), Name = "",
                    });
                }
                if (shstrndx < _sections.Count)
                {
                    var names = _sections[shstrndx];
                    for (int i = 0; i < _sections.Count; i++)
                    {
                        var s = _sections[i];
                        s.Name = String(names, U32((int)shoff + i * 64));
                        _sections[i] = s;
                    }
                }
            }

            public Section Header(int index) =>
                index >= 0 && index < _sections.Count ? _sections[index] : throw new InvalidDataException($"{_where}: section index {index} out of range (0..{_sections.Count - 1}).");

            public IEnumerable<Section> Sections(uint type)
            {
                foreach (var s in _sections) if (s.Type == type) yield return s;
            }

            public Section Single(uint type, string name)
            {
                var found = new List<Section>(Sections(type));
                if (found.Count != 1)
                    throw new InvalidDataException($"{_where}: expected one {name} section, found {found.Count}; is this a dynamically linked shared library with symbol versions?");
                return found[0];
            }

            public IEnumerable<VersionAux> VersionNeedEntries(Section verneed)
            {
                var strtab = Header(verneed.Link);
                int offset = verneed.Offset;
                for (int i = 0; i < verneed.Info; i++)
                {
                    int cnt = U16(offset + 2);
                    string file = String(strtab, U32(offset + 4));
                    int aux = offset + (int)U32(offset + 8);
                    for (int j = 0; j < cnt; j++)
                    {
                        yield return new VersionAux { File = file, Name = String(strtab, U32(aux + 8)), Offset = aux, Index = U16(aux + 6) };
                        uint nextAux = U32(aux + 12);
                        if (nextAux == 0) break;
                        aux += (int)nextAux;
                    }
                    uint next = U32(offset + 12);
                    if (next == 0) break;
                    offset += (int)next;
                }
            }

            public IEnumerable<SymbolView> DynamicSymbols(Section dynsym, Section versym)
            {
                var strtab = Header(dynsym.Link);
                int count = dynsym.Size / 24;
                if (versym.Size / 2 < count)
                    throw new InvalidDataException($"{_where}: .gnu.version has {versym.Size / 2} entries for {count} dynamic symbols.");
                for (int i = 0; i < count; i++)
                {
                    int so = dynsym.Offset + i * 24;
                    int vo = versym.Offset + i * 2;
                    yield return new SymbolView
                    {
                        Name = String(strtab, U32(so)), Binding = _b[so + 4] >> 4, Undefined = U16(so + 6) == 0,
                        SymbolOffset = so, VersymOffset = vo, RawVersion = U16(vo),
                    };
                }
            }

            public string String(Section strtab, uint index)
            {
                if (index >= (uint)strtab.Size) throw new InvalidDataException($"{_where}: string index {index} beyond its table of {strtab.Size} bytes.");
                int start = strtab.Offset + (int)index, end = start;
                int limit = strtab.Offset + strtab.Size;
                while (end < limit && _b[end] != 0) end++;
                return Encoding.ASCII.GetString(_b, start, end - start);
            }

            void Check(int offset, int size)
            {
                if (offset < 0 || offset + size > _b.Length)
                    throw new InvalidDataException($"{_where}: read of {size} bytes at {offset} beyond the end ({_b.Length} bytes): truncated?");
            }

            public ushort U16(int o) { Check(o, 2); return (ushort)(_b[o] | _b[o + 1] << 8); }
            public uint U32(int o) { Check(o, 4); return (uint)(_b[o] | _b[o + 1] << 8 | _b[o + 2] << 16 | _b[o + 3] << 24); }
            public ulong U64(int o) { Check(o, 8); return U32(o) | (ulong)U32(o + 4) << 32; }
            public void PutU16(int o, ushort v) { Check(o, 2); _b[o] = (byte)v; _b[o + 1] = (byte)(v >> 8); }
        }
    }

#if !SIGLIP_ELF_PATCHER_TESTS
    /// <summary>
    /// MSBuild task: patches each libLibTorchSharp.so in <see cref="Files"/> when the host's libstdc++
    /// lacks GLIBCXX_3.4.32. Set SigLipPatchLibTorchSharp=true/false to force it on or off.
    /// </summary>
    public sealed class PatchLibTorchSharpForOldLibStdCxx : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = new Microsoft.Build.Framework.ITaskItem[0];

        /// <summary>"auto" (default: only when the host needs it), "true" or "false".</summary>
        public string Mode { get; set; } = "auto";

        public override bool Execute()
        {
            string mode = string.IsNullOrEmpty(Mode) ? "auto" : Mode.ToLowerInvariant();
            if (mode == "false") return true;
            string reason = "forced by SigLipPatchLibTorchSharp=true";
            if (mode != "true")
            {
                var host = ElfWeakVersionPatcher.CheckHost();
                reason = host.Reason;
                if (host.NeedsPatch != true)
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"libLibTorchSharp.so left as is: {reason}.");
                    return true;
                }
            }
            foreach (var item in Files)
            {
                string path = item.GetMetadata("FullPath");
                try
                {
                    var result = ElfWeakVersionPatcher.PatchFile(path);
                    if (result.Changed)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"Patched {path} ({reason}): {string.Join("; ", result.Edits)}");
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    Log.LogError($"Cannot patch {path}: {ex.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
