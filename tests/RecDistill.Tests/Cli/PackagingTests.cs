using System.Text.RegularExpressions;
using RecDistill.Cli;

namespace RecDistill.Tests.Cli;

/// <summary>
/// The packaging rules that a build alone would not catch: one version for every package and the
/// CLI, and a library package that leaves libtorch to the application. build/check-packages.sh
/// checks the packages themselves.
/// </summary>
public class PackagingTests
{
    private static readonly Regex VersionElement = new(@"<Version>\s*([^<]+?)\s*</Version>");

    [Fact]
    public void The_version_is_written_once_and_is_the_one_the_cli_prints()
    {
        var root = TestData.RepoRoot;
        var declaring = MsBuildFiles(root).Where(f => VersionElement.IsMatch(File.ReadAllText(f)))
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).ToList();
        Assert.Equal(["build/Packaging.props"], declaring);

        var version = VersionElement.Match(File.ReadAllText(Path.Combine(root, "build", "Packaging.props"))).Groups[1].Value;
        Assert.StartsWith(version + " (commit ", CliApp.Version);
    }

    [Fact]
    public void The_libraries_reference_no_libtorch_and_serving_no_torchsharp()
    {
        var library = File.ReadAllText(Path.Combine(TestData.RepoRoot, "src", "RecDistill", "RecDistill.csproj"));
        Assert.Contains("Include=\"TorchSharp\"", library);
        Assert.DoesNotContain("libtorch-", library, StringComparison.OrdinalIgnoreCase);
        var serving = File.ReadAllText(Path.Combine(TestData.RepoRoot, "src", "RecDistill.Serving", "RecDistill.Serving.csproj"));
        Assert.DoesNotContain("torch", serving.Replace("No TorchSharp", ""), StringComparison.OrdinalIgnoreCase);
        // The packed library comes with its XML documentation, as the reference the tests build against does.
        var libraryOutput = Path.GetDirectoryName(typeof(RecDistill.Runs.Workflow).Assembly.Location)!;
        Assert.True(File.Exists(Path.Combine(libraryOutput, "RecDistill.xml")), "the library's XML documentation is not built");
    }

    private static IEnumerable<string> MsBuildFiles(string root) =>
        Directory.EnumerateFiles(root, "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".csproj") || f.EndsWith(".props") || f.EndsWith(".targets"))
            .Where(f => !Regex.IsMatch(Path.GetRelativePath(root, f).Replace('\\', '/'), @"(^|/)(bin|obj|\.git)/"));
}
