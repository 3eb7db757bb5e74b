using System.Text.RegularExpressions;

namespace RecDistill.Tests.Runs;

/// <summary>
/// A record or file the docs point to must be in the repository: every path in a code span of README.md or
/// docs/*.md that starts at a top-level folder (results/, docs/, src/, tests/, bench/, build/) exists, as a
/// file, a folder, or for a pattern with '*' at least one match. Fenced blocks are commands, not references.
/// </summary>
public partial class DocsPathsTests
{
    [Fact]
    public void Every_repository_path_the_docs_name_exists()
    {
        var files = new[] { Path.Combine(TestData.RepoRoot, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(TestData.RepoRoot, "docs"), "*.md"));
        var missing = new List<string>();
        int checkedPaths = 0;
        foreach (var file in files)
        {
            var text = FencedBlock().Replace(File.ReadAllText(file), "");
            foreach (Match span in CodeSpan().Matches(text))
            {
                var first = span.Groups[1].Value.Trim().Split(' ', 2)[0].TrimEnd('.', ',', ';', ':', ')');
                if (!RepositoryPath().IsMatch(first)) continue;
                checkedPaths++;
                if (!Exists(first.TrimEnd('/'))) missing.Add($"{Path.GetFileName(file)}: {first}");
            }
        }
        Assert.True(checkedPaths > 100, $"only {checkedPaths} paths found: has the docs' form changed?");
        Assert.True(missing.Count == 0, "paths the docs name that are not in the repository:\n" + string.Join("\n", missing));
    }

    private static bool Exists(string relative)
    {
        if (!relative.Contains('*')) return File.Exists(Path.Combine(TestData.RepoRoot, relative)) || Directory.Exists(Path.Combine(TestData.RepoRoot, relative));
        // A pattern in the last part only (e.g. results/citeulike/mkd-timing-*).
        string dir = Path.Combine(TestData.RepoRoot, Path.GetDirectoryName(relative) ?? "");
        return Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir, Path.GetFileName(relative)).Any();
    }

    [GeneratedRegex(@"```.*?```", RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"`([^`\n]+)`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"^(results|docs|src|tests|bench|build)/[^\s]*$")]
    private static partial Regex RepositoryPath();
}
