using System.ComponentModel;
using System.Globalization;
using System.Text;
using RecDistill.Data;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

[OnlyWith("--users", "it says what to do with the users of the file that the model does not hold", "--unknown")]
[OnlyWith("--users", "the users of a file are scored in parallel; one list takes one thread", "--threads")]
public sealed class RecommendSettings : CommandSettings
{
    [CommandOption("--model <FILE>")]
    [Description("Model file written by export.")]
    public string Model { get; set; } = "";

    [CommandOption("--user <ID>")]
    [Description("One user id of the model: prints a table (or CSV with --out).")]
    public string? User { get; set; }

    [CommandOption("--users <FILE>")]
    [Description("A file of user ids, one per line (blank lines skipped; a line in double quotes is unquoted as in CSV): writes CSV user,rank,item,score.")]
    public string? Users { get; set; }

    [CommandOption("--items <IDS>")]
    [Description("A user the model does not hold, from the items they interacted with (comma-separated item ids; quote an id holding a comma): the user vector is folded in from those items' vectors (docs/serving.md) and the items are left out.")]
    public string? Items { get; set; }

    [CommandOption("--unknown <MODE>")]
    [Description("With --users, users the model does not hold: skip (no rows; their count on stderr) | popular (the most popular train items) | error (stop at the first, naming its line). Default: skip.")]
    [DefaultValue("skip")]
    public string Unknown { get; set; } = "skip";

    // Spectre.Console.Cli needs long option names of two or more letters; CliApp turns `--k` into `-k`.
    [CommandOption("-k|--top <N>")]
    [Description("Items per user (also accepted as --k).")]
    [DefaultValue(10)]
    public int K { get; set; } = 10;

    [CommandOption("--out <FILE>")]
    [Description("Write CSV here (atomically; an existing file is replaced): for --users instead of standard output, for --user (user,rank,item,score) or --items (rank,item,score) instead of the table.")]
    public string? Out { get; set; }

    [CommandOption("--include-seen")]
    [Description("Also rank the user's train items, or the --items (by default they are left out).")]
    public bool IncludeSeen { get; set; }

    [CommandOption("--threads <N>")]
    [Description("Threads for --users. Default: 1.")]
    [DefaultValue(1)]
    public int Threads { get; set; } = 1;

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Model)) return ValidationResult.Error("--model FILE is required (a file written by export)");
        if ((User is null ? 0 : 1) + (Users is null ? 0 : 1) + (Items is null ? 0 : 1) != 1)
            return ValidationResult.Error("give one of --user ID, --users FILE or --items A,B,C");
        if (User is not null && User.Trim().Length == 0) return ValidationResult.Error("--user: the id is empty");
        if (Items is not null && ItemList.Parse(Items) is { Problem: { } problem }) return ValidationResult.Error($"--items: {problem}");
        if (UnknownUserModes.Parse(Unknown) is null) return ValidationResult.Error($"--unknown '{Unknown}' is not one of skip, popular, error");
        if (K < 1) return ValidationResult.Error("--k must be at least 1");
        if (Threads < 1) return ValidationResult.Error("--threads must be at least 1");
        return ValidationResult.Success();
    }
}

/// <summary>What `recommend --users` does with a user the model does not hold.</summary>
public enum UnknownUsers { Skip, Popular, Error }

public static class UnknownUserModes
{
    public static UnknownUsers? Parse(string s) => s.ToLowerInvariant() switch
    {
        "skip" => UnknownUsers.Skip,
        "popular" => UnknownUsers.Popular,
        "error" => UnknownUsers.Error,
        _ => null,
    };
}

/// <summary>`recdistill recommend`: top-K items for one user (table), a file of users (CSV), or a new user given by their items.</summary>
public sealed class RecommendCommand : Command<RecommendSettings>
{
    public override int Execute(CommandContext context, RecommendSettings settings, CancellationToken cancellationToken)
    {
        // Read the user list first: a mistake there is reported before the model is loaded.
        var users = settings.Users is null ? null : ReadUserFile(settings.Users);
        var recommender = Recommender.Load(settings.Model);
        bool excludeSeen = !settings.IncludeSeen;
        if (settings.Items is not null)
        {
            var items = ItemList.Parse(settings.Items).Ids!;
            foreach (var id in items)
                if (!recommender.Model.TryGetItem(id, out _))
                    throw new UserErrorException($"--items: item '{id}' is not in the model {settings.Model}");
            var list = recommender.RecommendFromItems(items, settings.K, excludeSeen);
            // An id given twice is one interaction (the fold-in uses each item once).
            int distinct = items.Distinct(StringComparer.Ordinal).Count();
            return Show(settings.Out, $"a user of {distinct} item{(distinct == 1 ? "" : "s")} (folded in): top {list.Count}", recommender.Model, excludeSeen ? "given items left out" : null, list);
        }
        if (users is null)
        {
            string id = settings.User!.Trim();
            var list = recommender.Recommend(id, settings.K, excludeSeen);
            if (settings.Out is not null)
            {
                WriteUserCsv(settings.Out, [id], [list]);
                return 0;
            }
            return Show(null, $"user {id}: top {list.Count}", recommender.Model, excludeSeen ? "train items left out" : null, list);
        }
        var mode = UnknownUserModes.Parse(settings.Unknown)!.Value;
        var known = new List<string>();
        var unknown = new List<(string Id, long Line)>();
        foreach (var (id, line) in users)
        {
            if (recommender.Model.TryGetUser(id, out _)) known.Add(id);
            else if (mode == UnknownUsers.Error)
                throw new DataFormatException(settings.Users!, line, $"user '{id}' is not in the model {settings.Model} (--unknown skip or popular goes on past such users)");
            else unknown.Add((id, line));
        }
        var lists = recommender.RecommendBatch(known, settings.K, excludeSeen, settings.Threads);
        var byUser = new Dictionary<string, IReadOnlyList<Recommendation>>(StringComparer.Ordinal);
        for (int j = 0; j < known.Count; j++) byUser[known[j]] = lists[j];
        var popular = mode == UnknownUsers.Popular ? recommender.Popular(settings.K) : null;
        // Rows in the file's order; with skip, unknown users have none.
        var ids = new List<string>();
        var rows = new List<IReadOnlyList<Recommendation>>();
        foreach (var (id, _) in users)
        {
            if (byUser.TryGetValue(id, out var list)) { ids.Add(id); rows.Add(list); }
            else if (popular is not null) { ids.Add(id); rows.Add(popular); }
        }
        WriteUserCsv(settings.Out, ids, rows);
        if (unknown.Count > 0)
        {
            var (firstId, firstLine) = unknown[0];
            string what = mode == UnknownUsers.Popular ? "served the most popular items to" : "skipped";
            Console.Error.WriteLine($"{what} {unknown.Count:N0} user(s) not in the model (the first: '{firstId}', {settings.Users}:{firstLine})");
        }
        return 0;
    }

    private static int Show(string? csv, string title, CompactModel m, string? left, IReadOnlyList<Recommendation> list)
    {
        if (csv is not null)
        {
            WriteRankCsv(csv, list);
            return 0;
        }
        ShowTable(title, $"of {m.NumItems:N0} items" + (left is null ? "" : ", " + left), list);
        return 0;
    }

    internal static void ShowTable(string title, string caption, IReadOnlyList<Recommendation> list)
    {
        var t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(title)).Caption(Markup.Escape(caption));
        t.AddColumn(new TableColumn("rank").RightAligned());
        t.AddColumn(new TableColumn("item").RightAligned());
        t.AddColumn(new TableColumn("score").RightAligned());
        for (int r = 0; r < list.Count; r++)
            t.AddRow((r + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(list[r].ItemId),
                list[r].Score.ToString("F4", CultureInfo.InvariantCulture));
        AnsiConsole.Write(t);
    }

    /// <summary>User ids with their 1-based line numbers; blank lines are skipped, a line in double quotes is unquoted.</summary>
    internal static List<(string Id, long Line)> ReadUserFile(string path)
    {
        if (Directory.Exists(path)) throw new UserErrorException($"--users {path} is a directory, not a file");
        if (!File.Exists(path)) throw new UserErrorException($"--users {path}: no such file");
        var result = new List<(string, long)>();
        long line = 0;
        foreach (var raw in File.ReadLines(path))
        {
            line++;
            var text = raw.Trim().TrimStart('\uFEFF');
            if (text.Length == 0) continue;
            if (text[0] == '"')
            {
                if (ItemList.Parse(text) is not { Ids: [var single] })
                    throw new DataFormatException(path, line, $"'{Shorten(text)}' is not one quoted id (\"...\", a quote inside written twice)");
                text = single;
            }
            result.Add((text, line));
        }
        if (result.Count == 0) throw new DataFormatException(path, 0, "no user ids in the file");
        return result;
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    private static void WriteUserCsv(string? path, IReadOnlyList<string> users, IReadOnlyList<IReadOnlyList<Recommendation>> lists)
    {
        var sb = new StringBuilder("user,rank,item,score\n");
        for (int j = 0; j < users.Count; j++)
            for (int r = 0; r < lists[j].Count; r++)
                sb.Append(CsvText.Field(users[j])).Append(CultureInfo.InvariantCulture, $",{r + 1},")
                  .Append(CsvText.Field(lists[j][r].ItemId)).Append(CultureInfo.InvariantCulture, $",{lists[j][r].Score:R}\n");
        CsvText.Write(path, sb.ToString(), users.Count == 1 ? "1 user" : $"{users.Count:N0} users");
    }

    internal static void WriteRankCsv(string? path, IReadOnlyList<Recommendation> list)
    {
        var sb = new StringBuilder("rank,item,score\n");
        for (int r = 0; r < list.Count; r++)
            sb.Append(CultureInfo.InvariantCulture, $"{r + 1},").Append(CsvText.Field(list[r].ItemId))
              .Append(CultureInfo.InvariantCulture, $",{list[r].Score:R}\n");
        CsvText.Write(path, sb.ToString(), $"{list.Count} items");
    }
}
