using System.ComponentModel;
using System.Globalization;
using System.Text;
using RecDistill.Data;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

public sealed class RecommendSettings : CommandSettings
{
    [CommandOption("--model <FILE>")]
    [Description("Model file written by export.")]
    public string Model { get; set; } = "";

    [CommandOption("--user <RAW_ID>")]
    [Description("One raw user id: prints a table (or CSV with --out).")]
    public long? User { get; set; }

    [CommandOption("--users <FILE>")]
    [Description("A file of raw user ids, one per line (blank lines skipped): writes CSV user,rank,item,score.")]
    public string? Users { get; set; }

    // Spectre.Console.Cli needs long option names of two or more letters; CliApp turns `--k` into `-k`.
    [CommandOption("-k|--top <N>")]
    [Description("Items per user (also accepted as --k).")]
    [DefaultValue(10)]
    public int K { get; set; } = 10;

    [CommandOption("--out <FILE>")]
    [Description("Write the CSV here (atomically; an existing file is replaced) instead of to standard output.")]
    public string? Out { get; set; }

    [CommandOption("--include-seen")]
    [Description("Also rank the user's train items (by default they are left out).")]
    public bool IncludeSeen { get; set; }

    [CommandOption("--threads <N>")]
    [Description("Threads for --users. Default: 1.")]
    [DefaultValue(1)]
    public int Threads { get; set; } = 1;

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Model)) return ValidationResult.Error("--model FILE is required (a file written by export)");
        if ((User is null) == (Users is null)) return ValidationResult.Error("give either --user RAW_ID or --users FILE");
        if (K < 1) return ValidationResult.Error("--k must be at least 1");
        if (Threads < 1) return ValidationResult.Error("--threads must be at least 1");
        return ValidationResult.Success();
    }
}

/// <summary>`recdistill recommend`: top-K items for one user (table) or for a file of users (CSV), from an exported model.</summary>
public sealed class RecommendCommand : Command<RecommendSettings>
{
    public override int Execute(CommandContext context, RecommendSettings settings, CancellationToken cancellationToken)
    {
        // Read the user list first: a mistake there is reported before the model is loaded.
        var users = settings.Users is null ? null : ReadUserFile(settings.Users);
        var recommender = Recommender.Load(settings.Model);
        bool excludeSeen = !settings.IncludeSeen;
        if (users is null)
        {
            long id = settings.User!.Value;
            var list = recommender.Recommend(id, settings.K, excludeSeen);
            if (settings.Out is not null)
            {
                WriteCsv(settings.Out, new[] { id }, new[] { list });
                return 0;
            }
            var m = recommender.Model;
            var t = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"user {id}: top {list.Count}"))
                .Caption(Markup.Escape($"of {m.NumItems:N0} items" + (excludeSeen ? ", train items left out" : "")));
            t.AddColumn(new TableColumn("rank").RightAligned());
            t.AddColumn(new TableColumn("item").RightAligned());
            t.AddColumn(new TableColumn("score").RightAligned());
            for (int r = 0; r < list.Count; r++)
                t.AddRow((r + 1).ToString(CultureInfo.InvariantCulture), list[r].ItemId.ToString(CultureInfo.InvariantCulture),
                    list[r].Score.ToString("F4", CultureInfo.InvariantCulture));
            AnsiConsole.Write(t);
            return 0;
        }
        for (int j = 0; j < users.Count; j++)
            if (!recommender.ContainsUser(users[j].Id))
                throw new DataFormatException(settings.Users!, users[j].Line, $"user {users[j].Id} is not in the model {settings.Model}");
        var ids = users.Select(u => u.Id).ToArray();
        var lists = recommender.RecommendBatch(ids, settings.K, excludeSeen, settings.Threads);
        WriteCsv(settings.Out, ids, lists);
        return 0;
    }

    /// <summary>Raw user ids with their 1-based line numbers; blank lines are skipped.</summary>
    internal static List<(long Id, long Line)> ReadUserFile(string path)
    {
        if (Directory.Exists(path)) throw new UserErrorException($"--users {path} is a directory, not a file");
        if (!File.Exists(path)) throw new UserErrorException($"--users {path}: no such file");
        var result = new List<(long, long)>();
        long line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            line++;
            var text = raw.Trim();
            if (text.Length == 0) continue;
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long id))
                throw new DataFormatException(path, line, $"'{(text.Length > 40 ? text[..40] + "..." : text)}' is not a user id (expected an integer)");
            result.Add((id, line));
        }
        if (result.Count == 0) throw new DataFormatException(path, 0, "no user ids in the file");
        return result;
    }

    private static void WriteCsv(string? path, IReadOnlyList<long> users, IReadOnlyList<IReadOnlyList<Recommendation>> lists)
    {
        var sb = new StringBuilder("user,rank,item,score\n");
        for (int j = 0; j < users.Count; j++)
            for (int r = 0; r < lists[j].Count; r++)
                sb.Append(CultureInfo.InvariantCulture, $"{users[j]},{r + 1},{lists[j][r].ItemId},{lists[j][r].Score:R}\n");
        if (path is null)
        {
            Console.Out.Write(sb.ToString());
            Console.Out.Flush();
            return;
        }
        AtomicFile.WriteText(path, sb.ToString());
        AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(path)}[/] ({users.Count:N0} users)");
    }
}
