using System.Text;
using System.Text.RegularExpressions;
using RecDistill.Cli;

namespace RecDistill.Tests.Runs;

/// <summary>
/// Every `compare --report-only` and `tune --report-only` command that README.md or docs/ shows is run
/// here against the records under results/, and must rebuild the committed tables byte for byte: a table
/// in the docs is what its records say, and a change of the report format or of a record shows up.
/// </summary>
public partial class DocsReportTests
{
    public static TheoryData<string, string> Commands()
    {
        var data = new TheoryData<string, string>();
        foreach (var (file, command) in ReportCommands()) data.Add(file, command);
        return data;
    }

    [Fact]
    public void The_docs_show_report_commands_for_their_tables()
    {
        var commands = ReportCommands().Select(c => c.Command).ToList();
        Assert.Contains(commands, c => c.Contains("--out docs/results-citeulike/bpr", StringComparison.Ordinal));
        Assert.Contains(commands, c => c.StartsWith("tune ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_table_copied_into_a_doc_matches_the_report_its_command_writes()
    {
        // The committed reports equal their rebuild (the theory below); a doc that shows the command and
        // also copies the table into its text must copy it as the report has it.
        foreach (var group in ReportCommands().Where(c => c.Command.StartsWith("compare ", StringComparison.Ordinal)).GroupBy(c => c.File))
        {
            var reportLines = group.SelectMany(c =>
            {
                var args = Tokens(c.Command);
                return File.ReadAllLines(Path.Combine(TestData.RepoRoot, args[args.IndexOf("--out") + 1], "results.md"));
            }).Where(l => l.StartsWith("| ", StringComparison.Ordinal)).ToHashSet();
            var methods = reportLines.Select(l => l.Split('|')[1].Trim()).ToHashSet();
            var widths = reportLines.Select(l => l.Split('|').Length).ToHashSet();
            var docLines = File.ReadAllLines(Path.Combine(TestData.RepoRoot, group.Key))
                .Where(l => l.StartsWith("| ", StringComparison.Ordinal) && widths.Contains(l.Split('|').Length) && methods.Contains(l.Split('|')[1].Trim()))
                .ToList();
            Assert.All(docLines, l => Assert.True(reportLines.Contains(l), $"{group.Key}: table row not in the report its command writes: {l}"));
            // A results table copied whole (its header "| method | runs |") must match a report line for line,
            // whatever its width: a copy of an older report's form is stale too.
            var lines = File.ReadAllLines(Path.Combine(TestData.RepoRoot, group.Key));
            for (int i = 0; i < lines.Length; i++)
            {
                if (!lines[i].StartsWith("| method | runs |", StringComparison.Ordinal)) continue;
                for (int j = i; j < lines.Length && lines[j].StartsWith('|'); j++)
                    Assert.True(reportLines.Contains(lines[j]) || lines[j].StartsWith("|---", StringComparison.Ordinal),
                        $"{group.Key}:{j + 1}: copied table line not in the report its command writes: {lines[j]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_report_command_in_the_docs_rebuilds_the_committed_files(string file, string command)
    {
        var args = Tokens(command);
        int outAt = args.IndexOf("--out");
        Assert.True(outAt >= 0 && outAt + 1 < args.Count, $"{file}: `{command}` names no --out");
        string shownOut = args[outAt + 1];
        var committed = Path.Combine(TestData.RepoRoot, shownOut);
        Assert.True(Directory.Exists(committed), $"{file}: --out {shownOut} is not in the repository");
        var temp = TestData.TempDir();
        string[] compared;
        if (args[0] == "compare")
        {
            args[outAt + 1] = temp;
            for (int i = 1; i < args.Count; i++)
                if (args[i - 1] == "--records") args[i] = Path.Combine(TestData.RepoRoot, args[i]);
                else if (args[i - 1] == "--import" && args[i].IndexOf('=') is var eq and > 0)
                    args[i] = args[i][..(eq + 1)] + Path.Combine(TestData.RepoRoot, args[i][(eq + 1)..]);
            compared = ["results.md", "results.csv", "results.json"];
        }
        else
        {
            // tune --report-only writes into the search's own directory: rebuild a copy of it.
            CopyDirectory(committed, temp);
            args[outAt + 1] = temp;
            compared = ["trials.md", "trials.csv"];
        }
        Assert.Equal(0, CliApp.Run(args.ToArray()));
        foreach (var name in compared)
            Assert.True(File.ReadAllText(Path.Combine(committed, name)) == File.ReadAllText(Path.Combine(temp, name)),
                $"{file}: `{command}` does not rebuild {shownOut}/{name} as committed; run it and commit the result");
    }

    /// <summary>(file, command from "compare"/"tune" on) for each report command in README.md and docs/*.md, shell variables expanded.</summary>
    private static List<(string File, string Command)> ReportCommands()
    {
        var files = new[] { Path.Combine(TestData.RepoRoot, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(TestData.RepoRoot, "docs"), "*.md", SearchOption.AllDirectories));
        var result = new List<(string, string)>();
        foreach (var path in files)
        {
            var text = File.ReadAllText(path);
            string name = Path.GetRelativePath(TestData.RepoRoot, path);
            // Fenced shell blocks: variables set in the block, continuation lines joined.
            foreach (Match block in FencedBlock().Matches(text))
            {
                var variables = new Dictionary<string, string>();
                foreach (var line in block.Groups[1].Value.Replace("\\\n", " ").Split('\n'))
                {
                    if (Assignment().Match(line.Trim()) is { Success: true } a)
                    {
                        variables[a.Groups[1].Value] = a.Groups[2].Value.Trim('"');
                        continue;
                    }
                    var expanded = Variable().Replace(line, m => variables.GetValueOrDefault(m.Groups[1].Value, m.Value));
                    if (ReportCommand(expanded) is { } c) result.Add((name, c));
                }
            }
            // Commands quoted inline in prose (a code span may wrap across lines).
            foreach (Match span in InlineCode().Matches(FencedBlock().Replace(text, "")))
                if (ReportCommand(Regex.Replace(span.Groups[1].Value, @"\s+", " ")) is { } c) result.Add((name, c));
        }
        return result;
    }

    private static string? ReportCommand(string line)
    {
        var m = Regex.Match(line, @"\b(compare|tune) --report-only\b.*");
        if (!m.Success) return null;
        var command = m.Value.Trim();
        // A placeholder (DIR, OUT) is an explanation, not a command that can be run.
        return Tokens(command).Any(t => t is "DIR" or "OUT" || t.Contains("DIR/", StringComparison.Ordinal)) ? null : command;
    }

    /// <summary>Splits a shell command line on spaces outside double quotes (the quotes dropped).</summary>
    private static List<string> Tokens(string command)
    {
        var tokens = new List<string>();
        var current = new StringBuilder();
        bool quoted = false, any = false;
        foreach (char ch in command)
        {
            if (ch == '"') { quoted = !quoted; any = true; }
            else if (ch == ' ' && !quoted)
            {
                if (any) tokens.Add(current.ToString());
                current.Clear();
                any = false;
            }
            else { current.Append(ch); any = true; }
        }
        if (any) tokens.Add(current.ToString());
        return tokens;
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }

    [GeneratedRegex(@"```(?:bash|sh)\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")]
    private static partial Regex Assignment();

    [GeneratedRegex(@"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")]
    private static partial Regex Variable();
}
