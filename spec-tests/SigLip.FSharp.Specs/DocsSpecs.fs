/// docs/fsharp.md quotes these specs: every ```fsharp block there starts with the spec file it comes
/// from, and its lines must occur in that file in order, contiguous except where "// ..." skips ahead
/// (blank lines and indentation aside). So the page cannot drift from code that compiles and passes.
module SigLip.FSharp.Specs.DocsSpecs

open System
open System.IO
open Xunit
open SigLip.FSharp.Specs.Support

let private elision = "// ..."

/// The ```fsharp blocks of a Markdown file: (line number of the fence, lines inside).
let fsharpBlocks (lines: string[]) =
    let rec scan i acc =
        if i >= lines.Length then List.rev acc
        elif lines[i].Trim() = "```fsharp" then
            let close = Array.FindIndex(lines, i + 1, fun l -> l.Trim() = "```")
            if close < 0 then failwithf "line %d: a ```fsharp block is never closed" (i + 1)
            scan (close + 1) ((i + 1, lines[i + 1 .. close - 1]) :: acc)
        else scan (i + 1) acc
    scan 0 []

/// None when every segment of `quoted` (split at "// ...") occurs, contiguously, after the previous one in `source`.
let findQuote (source: string[]) (quoted: string[]) =
    let significant (ls: string[]) = ls |> Array.map (fun l -> l.Trim()) |> Array.filter (fun l -> l <> "")
    let source = significant source
    let segments =
        (significant quoted, [ [] ])
        ||> Array.foldBack (fun l acc -> if l = elision then [] :: acc else (l :: List.head acc) :: List.tail acc)
        |> List.filter (not << List.isEmpty)
    let matchesAt (segment: string list) at =
        at + segment.Length <= source.Length && segment |> List.mapi (fun k l -> source[at + k] = l) |> List.forall id
    let rec go from segments =
        match segments with
        | [] -> None
        | segment :: rest ->
            match [ from .. source.Length - 1 ] |> List.tryFind (matchesAt segment) with
            | Some at -> go (at + segment.Length) rest
            | None -> Some(List.head segment)
    go 0 segments

[<Fact>]
let ``every F# block in docs/fsharp.md is a verbatim excerpt of a spec file`` () =
    let page = Path.Combine(repoRoot, "docs", "fsharp.md")
    let blocks = fsharpBlocks (File.ReadAllLines page)
    assertTrue (blocks.Length >= 10) (sprintf "%s has only %d ```fsharp blocks" page blocks.Length)
    let problems =
        [ for line, block in blocks do
            let header = if block.Length = 0 then "" else block[0].Trim()
            if not (header.StartsWith "// spec-tests/" && header.EndsWith ".fs") then
                yield sprintf "docs/fsharp.md:%d: the block does not start with '// spec-tests/.../File.fs'" line
            else
                let file = Path.Combine(repoRoot, header.Substring 3)
                if not (File.Exists file) then
                    yield sprintf "docs/fsharp.md:%d: %s does not exist" line file
                else
                    match findQuote (File.ReadAllLines file) block[1..] with
                    | None -> ()
                    | Some first -> yield sprintf "docs/fsharp.md:%d: not found in %s (from the line '%s' on)" line (header.Substring 3) first ]
    assertTrue problems.IsEmpty (String.concat "\n" problems)

[<Fact>]
let ``the quote check finds lines in order and rejects changed or reordered ones`` () =
    let source = [| "let a = 1"; ""; "  let b = 2"; "let c = 3"; "let d = 4" |]
    Assert.Equal(None, findQuote source [| "let a = 1"; "let b = 2" |])
    Assert.Equal(None, findQuote source [| "let a = 1"; "// ..."; "let d = 4" |])
    Assert.Equal(Some "let a = 1", findQuote source [| "let a = 1"; "let c = 3" |]) // not contiguous
    Assert.Equal(Some "let a = 2", findQuote source [| "let a = 2" |])
    Assert.Equal(Some "let a = 1", findQuote source [| "let d = 4"; "// ..."; "let a = 1" |])
