using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using RecDistill.Analyzers;

namespace RecDistill.Tests.Analyzers;

/// <summary>
/// The build-time Scalar lifetime check (build/RecDistill.Analyzers) run on small snippets compiled
/// against TorchSharp with the repository's real member list. A snippet marks each line that must be
/// reported with <c>// expect: RD000x ...</c> (one id per diagnostic); every other line must stay
/// clean, so each test fails on a missing, an extra or a moved diagnostic.
/// </summary>
public class ScalarLifetimeAnalyzerTests
{
    [Fact]
    public async Task A_number_operand_of_a_tensor_operator_is_RD0002()
    {
        await Check(Body("""
            var x = t * 3;      // expect: RD0002
            var y = 1 - t;      // expect: RD0002
            var z = t / 2.0;    // expect: RD0002
            t *= 3;             // expect: RD0002
            t += 1;             // expect: RD0002
            """));
    }

    [Fact]
    public async Task A_number_converted_to_a_Scalar_argument_is_RD0001()
    {
        await Check(Body("""
            var x = t.mul(3.0);                    // expect: RD0001
            var y = t.clamp_(1e-10, 1 - 1e-10);    // expect: RD0001 RD0001
            var z = torch.full(2, 3, 3f);          // expect: RD0001
            var above = t > 0.5;                   // expect: RD0001
            t.fill_(3);                            // expect: RD0001
            """));
    }

    [Fact]
    public async Task Adding_tensors_with_the_implicit_alpha_is_RD0002()
    {
        await Check(Body("""
            var x = a + b;    // expect: RD0002
            a.add_(b);        // expect: RD0002
            var y = a.add(b); // expect: RD0002
            """));
    }

    [Fact]
    public async Task Members_that_convert_inside_TorchSharp_are_RD0002()
    {
        await Check(Body("""
            var x = t.square();                        // expect: RD0002
            var y = torch.arange(10);                  // expect: RD0002 RD0001
            float f = (float)t;                        // expect: RD0002
            double d = t.ToDouble();                   // expect: RD0002
            Func<Tensor, Tensor> sq = torch.square;    // expect: RD0002
            var c = nn.functional.celu(t, 1.0);        // expect: RD0002
            var opt = torch.optim.Adam(new[] { new TorchSharp.Modules.Parameter(a) });
            opt.step();                                // expect: RD0002
            """));
    }

    [Fact]
    public async Task A_Scalar_returned_by_TorchSharp_and_not_held_is_RD0001()
    {
        await Check(Body("""
            var s = t.ToScalar();         // expect: RD0001
            var x = t.mul(t.ToScalar());  // expect: RD0001
            using var held = t.ToScalar();
            var y = t.mul(held);
            Func<double, Scalar> make = ScalarExtensionMethods.ToScalar;  // expect: RD0001
            """));
    }

    [Fact]
    public async Task A_foreach_converting_its_elements_is_checked()
    {
        // The element conversion is no operation of the tree: the analyzer reads it from the statement.
        await Check(Body("""
            foreach (Scalar s in new[] { 1.0, 2.0 })   // expect: RD0001
                t.mul(s);
            foreach (float f in new[] { a, b }) { }     // expect: RD0002
            foreach (var u in new[] { a, b }) u.mul(u);
            """));
    }

    [Fact]
    public async Task Lambdas_and_local_Scalars_without_using_are_checked()
    {
        await Check(Body("""
            Func<Tensor, Tensor> twice = u => u * 2;   // expect: RD0002
            Scalar s = 3;                              // expect: RD0001
            var x = t.mul(s);
            var y = t.mul(a.dim() > 1 ? s : 2);        // expect: RD0001
            """));
    }

    [Fact]
    public async Task An_instance_readonly_field_does_not_hold_a_Scalar()
    {
        // The object's field keeps the Scalar alive only as long as something uses the object: the
        // JIT may end the object's life once the handle has been read, mid-call.
        await Check("""
            using TorchSharp;
            using static TorchSharp.torch;
            class C
            {
                readonly Scalar _s = 1f;            // expect: RD0001
                static Scalar _mutable = 2f;        // expect: RD0001
                Scalar Instance { get; } = 3;       // expect: RD0001
                static Scalar Settable { get; set; } = 4;   // expect: RD0001
                Tensor M(Tensor t) => t.mul(_s).mul(_mutable).mul(Instance).mul(Settable);
            }
            """);
    }

    [Fact]
    public async Task Held_Scalars_and_tensor_forms_pass()
    {
        await Check("""
            using TorchSharp;
            using static TorchSharp.torch;
            class C
            {
                static readonly Scalar S = 1f;
                static readonly Scalar Alpha = 1, Two = 2.0;
                static Scalar Three { get; } = 3;   // a static readonly backing field
                float M(Tensor t, Tensor a, Tensor b, Scalar? given, int k)
                {
                    using Scalar s = 3.0;
                    // The using holds whichever value a conditional, ?? or switch yields.
                    using Scalar c = k > 0 ? s : 2;
                    using Scalar d = given ?? 0.5;
                    using Scalar e = k switch { 0 => 1, 1 => s, _ => 2.5 };
                    var ce = t.mul(c).mul(d).mul(e).mul(Three);
                    var x = t.mul(s);
                    using (Scalar half = 2)
                    {
                        var y = t.div(half);
                    }
                    var z = t.mul(S).mul(Two);
                    var p = t.mul(t);
                    var q = a.add(b, alpha: s).add(b, alpha: Alpha).sub(b);
                    var r = a - b;
                    var u = a * b / b;
                    var w = t * s;
                    using Scalar lo = 1e-10, hi = 1 - 1e-10;
                    t.clamp_(lo, hi);
                    var f = torch.full(2, 3, S, dtype: ScalarType.Float32);
                    return t.sum().item<float>();
                }
            }
            """);
    }

    [Fact]
    public async Task Without_the_member_list_only_RD0001_is_reported()
    {
        await Check(Body("""
            var x = t * 3;
            var y = t.mul(3.0);   // expect: RD0001
            """), withList: false);
    }

    /// <summary>The list's ids resolve against this TorchSharp: none is left over from another version or mistyped.</summary>
    [Fact]
    public void Every_listed_member_names_a_TorchSharp_member()
    {
        var compilation = Compile("class C { }");
        var unresolved = ListEntries()
            .Where(id => DocumentationCommentId.GetSymbolsForDeclarationId(id, compilation).IsEmpty)
            .ToList();
        Assert.True(ListEntries().Count() > 300, "the list looks truncated");
        Assert.Empty(unresolved);
    }

    /// <summary>
    /// The list is generated from one TorchSharp build (build/scalar-scan.cs): another version can add
    /// members that create Scalars, so an upgrade fails here until the list is generated again.
    /// </summary>
    [Fact]
    public void The_list_was_generated_from_the_referenced_TorchSharp()
    {
        var header = File.ReadLines(ListPath).TakeWhile(l => l.StartsWith('#')).ToList();
        var match = header.Select(l => Regex.Match(l, @"assembly version (\d+(\.\d+){1,3})")).Single(m => m.Success);
        Assert.Equal(typeof(TorchSharp.torch).Assembly.GetName().Version, Version.Parse(match.Groups[1].Value));
    }

    /// <summary>
    /// The rules are errors that the repository's code meets, not silences: the one suppression is the
    /// process-lifetime cache of FixedScalars. Pragmas (also a bare one, which silences every id) and
    /// attributes in code, NoWarn in project files and severities in editor configs are all looked for.
    /// </summary>
    [Fact]
    public void Nothing_but_the_Scalar_cache_suppresses_the_rules()
    {
        var inCode = new Regex(@"#pragma[ \t]+warning[ \t]+disable([ \t]*(//.*)?$|\b[^\r\n]*\bRD000\d)|SuppressMessage\s*\([^)]*RD000\d",
            RegexOptions.IgnoreCase | RegexOptions.Multiline);
        var inConfig = new Regex(@"<NoWarn>[^<]*RD000\d|dotnet_diagnostic\.RD000\d\.severity", RegexOptions.IgnoreCase);
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(RepoRoot, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(RepoRoot, file).Replace('\\', '/');
            if (relative.Split('/').Any(p => p is "bin" or "obj" or ".git")) continue;
            string name = Path.GetFileName(file);
            Regex? pattern =
                name.EndsWith(".cs", StringComparison.Ordinal) && relative.Split('/')[0] is "src" or "bench" or "tests" ? inCode
                : name is ".editorconfig" or ".globalconfig" || name.EndsWith(".props") || name.EndsWith(".targets") || name.EndsWith("proj") ? inConfig
                : null;
            if (pattern is null) continue;
            foreach (Match m in pattern.Matches(File.ReadAllText(file))) found.Add($"{relative}: {m.Value.Trim()}");
        }
        var single = Assert.Single(found);
        Assert.StartsWith("src/RecDistill/Kernels/FixedScalars.cs: ", single);
        Assert.Contains("RD0001", single);
    }

    // ---- the harness ----

    /// <summary>Statements inside a method with tensors t, a and b.</summary>
    private static string Body(string statements) => $$"""
        using System;
        using TorchSharp;
        using static TorchSharp.torch;
        class C
        {
            void M(Tensor t, Tensor a, Tensor b)
            {
        {{statements}}
            }
        }
        """;

    /// <summary>Compiles the snippet (it must compile), runs the analyzer and compares with its expect markers.</summary>
    private static async Task Check(string source, bool withList = true)
    {
        var compilation = Compile(source);
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, "the snippet does not compile: " + string.Join("; ", errors));
        var additional = withList ? ImmutableArray.Create<AdditionalText>(new ListFile(ListPath)) : ImmutableArray<AdditionalText>.Empty;
        var diagnostics = await compilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ScalarLifetimeAnalyzer()), new AnalyzerOptions(additional))
            .GetAnalyzerDiagnosticsAsync();
        var actual = diagnostics.Select(d => (Line: d.Location.GetLineSpan().StartLinePosition.Line + 1, d.Id)).Order().ToList();
        var expected = Expected(source).Order().ToList();
        Assert.True(expected.SequenceEqual(actual),
            $"expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]:\n"
            + string.Join("\n", diagnostics.Select(d => d.ToString())));
    }

    private static IEnumerable<(int Line, string Id)> Expected(string source)
    {
        var lines = source.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int at = lines[i].IndexOf("// expect:", StringComparison.Ordinal);
            if (at < 0) continue;
            foreach (var id in lines[i][(at + "// expect:".Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                yield return (i + 1, id);
        }
    }

    private static CSharpCompilation Compile(string source) =>
        CSharpCompilation.Create("Snippet",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: "Snippet.cs")],
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    /// <summary>The running runtime's assemblies (TorchSharp among them, as this project references it).</summary>
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        paths.Add(typeof(TorchSharp.torch).Assembly.Location);
        return [.. paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    });

    private static string RepoRoot => TestData.RepoRoot;

    private static string ListPath => Path.Combine(RepoRoot, "build", ScalarLifetimeAnalyzer.ListFileName);

    /// <summary>The documentation ids of the list, as the analyzer reads them.</summary>
    private static IEnumerable<string> ListEntries() =>
        File.ReadLines(ListPath).Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.IndexOf(';') is var semi and >= 0 ? l[..semi].Trim() : l);

    private sealed class ListFile(string path) : AdditionalText
    {
        public override string Path => path;
        public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(File.ReadAllText(path));
    }
}
