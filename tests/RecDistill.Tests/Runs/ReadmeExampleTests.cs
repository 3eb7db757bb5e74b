using System.Collections.Immutable;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace RecDistill.Tests.Runs;

/// <summary>README's C# example is compiled against the library and run, so that it cannot rot.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void The_readme_example_compiles_and_runs()
    {
        var source = ExampleSource();
        // What a new console project has as implicit usings.
        const string implicitUsings = "global using System; global using System.IO; global using System.Linq; global using System.Collections.Generic;";
        var compilation = CSharpCompilation.Create("ReadmeExample",
            [CSharpSyntaxTree.ParseText(implicitUsings), CSharpSyntaxTree.ParseText(source, path: "README.md")],
            References(), new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));

        var assembly = Assembly.Load(image.ToArray());
        var output = new StringWriter();
        var before = Console.Out;
        Console.SetOut(output);
        try
        {
            var entry = assembly.EntryPoint!;
            entry.Invoke(null, entry.GetParameters().Length == 0 ? null : new object[] { Array.Empty<string>() });
        }
        finally
        {
            Console.SetOut(before);
        }
        var text = output.ToString();
        Assert.Matches(@"test NDCG@20: teacher 0\.\d{4} \(\d+ parameters\), MKD student 0\.\d{4} \(\d+ parameters\)", text);
        Assert.Equal(5, Regex.Matches(text, @"^user \d+: item \d+ score -?\d+\.\d{3}$", RegexOptions.Multiline).Count);
    }

    /// <summary>The code between README's readme-example markers, without its fence.</summary>
    private static string ExampleSource()
    {
        var readme = File.ReadAllText(Path.Combine(TestData.RepoRoot, "README.md"));
        var match = Regex.Match(readme, @"<!-- readme-example:start -->\s*```csharp\n(.*?)```\s*<!-- readme-example:end -->", RegexOptions.Singleline);
        Assert.True(match.Success, "README.md has no example between the readme-example markers");
        return match.Groups[1].Value;
    }

    private static ImmutableArray<MetadataReference> References() =>
        [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
}
