using System.Globalization;
using System.Text;

namespace RecDistill.Runs;

/// <summary>One loss term over one phase of a run: its mean loss per batch, its mean gradient norm on the shared student vectors, and that norm's share of all terms' norms.</summary>
public sealed record LossTermPhase(string Term, double Loss, double Gradient, double GradientShare);

/// <summary>
/// Each loss term's size and pull on the shared student vectors over a finished run, from the
/// loss_TERM and grad_TERM columns of its history.csv (written per epoch by distillation runs),
/// averaged over the first, middle and last third of the run's epochs. Shows which term dominates
/// the embeddings' gradient and how the terms' scales move as training goes on.
/// </summary>
public sealed class LossTermSummary
{
    private LossTermSummary(string run, int epochs, IReadOnlyList<string> terms, IReadOnlyList<(int From, int To)> phases,
        IReadOnlyList<IReadOnlyList<LossTermPhase>> byPhase)
    {
        Run = run; Epochs = epochs; Terms = terms; Phases = phases; ByPhase = byPhase;
    }

    /// <summary>The run directory read.</summary>
    public string Run { get; }

    /// <summary>Epochs in history.csv.</summary>
    public int Epochs { get; }

    /// <summary>The terms, in history.csv's column order (e.g. bpr, cpd_features, nkd, sld).</summary>
    public IReadOnlyList<string> Terms { get; }

    /// <summary>The phases' epoch ranges, first and last epoch included (fewer than three for runs under three epochs).</summary>
    public IReadOnlyList<(int From, int To)> Phases { get; }

    /// <summary>Per phase, one entry per term in <see cref="Terms"/>' order.</summary>
    public IReadOnlyList<IReadOnlyList<LossTermPhase>> ByPhase { get; }

    /// <summary>
    /// Reads RUN/history.csv, averaging over <paramref name="phases"/> equal parts of the run (fewer for
    /// shorter runs). Throws <see cref="UserErrorException"/> (file, line, reason) when the file is
    /// missing, has no loss_/grad_ column pairs (a run without loss terms, or written before they were
    /// logged), or holds a value that is not a number.
    /// </summary>
    public static LossTermSummary Read(string runDirectory, int phases = 3)
    {
        if (phases < 1) throw new ArgumentOutOfRangeException(nameof(phases), "at least one phase");
        var path = Path.Combine(runDirectory, RunDirectory.HistoryFile);
        if (!File.Exists(path)) throw new UserErrorException($"{path}: not found (is {runDirectory} a finished run directory?)");
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        if (lines.Length == 0) throw new UserErrorException($"{path}:1: empty file");
        var header = lines[0].Split(',');
        var terms = header.Where(h => h.StartsWith("loss_", StringComparison.Ordinal)).Select(h => h["loss_".Length..])
            .Where(t => Array.IndexOf(header, "grad_" + t) >= 0).ToList();
        if (terms.Count == 0)
            throw new UserErrorException($"{path}:1: no loss_TERM and grad_TERM columns (a run without loss terms, or one written before they were logged)");
        int epochs = lines.Length - 1;
        if (epochs == 0) throw new UserErrorException($"{path}:2: no epoch rows");
        var lossColumn = terms.Select(t => Array.IndexOf(header, "loss_" + t)).ToArray();
        var gradColumn = terms.Select(t => Array.IndexOf(header, "grad_" + t)).ToArray();
        var loss = new double[terms.Count, epochs];
        var grad = new double[terms.Count, epochs];
        for (int e = 0; e < epochs; e++)
        {
            var fields = lines[e + 1].Split(',');
            if (fields.Length != header.Length)
                throw new UserErrorException($"{path}:{e + 2}: {fields.Length} fields where the header has {header.Length}");
            for (int t = 0; t < terms.Count; t++)
            {
                loss[t, e] = Number(fields[lossColumn[t]], path, e + 2);
                grad[t, e] = Number(fields[gradColumn[t]], path, e + 2);
            }
        }
        int phaseCount = Math.Min(phases, epochs);
        var ranges = Enumerable.Range(0, phaseCount).Select(k => (From: k * epochs / phaseCount + 1, To: (k + 1) * epochs / phaseCount)).ToList();
        var byPhase = new List<IReadOnlyList<LossTermPhase>>();
        foreach (var (from, to) in ranges)
        {
            var means = terms.Select((term, t) => (Term: term,
                Loss: Enumerable.Range(from - 1, to - from + 1).Average(e => loss[t, e]),
                Gradient: Enumerable.Range(from - 1, to - from + 1).Average(e => grad[t, e]))).ToList();
            double total = means.Sum(m => m.Gradient);
            byPhase.Add(means.Select(m => new LossTermPhase(m.Term, m.Loss, m.Gradient, total > 0 ? m.Gradient / total : 0)).ToList());
        }
        return new LossTermSummary(runDirectory, epochs, terms, ranges, byPhase);
    }

    /// <summary>
    /// The run as one phase (each term over all its epochs), or null when it has no history with loss-term
    /// columns to read (a teacher, or a run of a build that did not log them).
    /// </summary>
    internal static IReadOnlyList<LossTermPhase>? WholeRun(string runDirectory)
    {
        try
        {
            return Read(runDirectory, phases: 1).ByPhase[0];
        }
        catch (UserErrorException)
        {
            return null;
        }
    }

    private static double Number(string field, string path, int line) =>
        double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v : throw new UserErrorException($"{path}:{line}: '{field}' is not a number");

    /// <summary>A Markdown table: one row per term, for each phase the mean loss, mean gradient norm and gradient share.</summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        string Range((int From, int To) p) => p.From == p.To ? $"epoch {p.From}" : $"epochs {p.From}-{p.To}";
        sb.Append(CultureInfo.InvariantCulture, $"{Run}: {Epochs} epochs; per term, mean loss per batch / mean gradient norm on the shared student vectors (share of all terms')").AppendLine().AppendLine();
        sb.Append("| term |").AppendJoin("", Phases.Select(p => $" {Range(p)} |")).AppendLine();
        sb.Append("|---|").AppendJoin("", Phases.Select(_ => "---:|")).AppendLine();
        for (int t = 0; t < Terms.Count; t++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {Terms[t]} |");
            foreach (var phase in ByPhase)
                sb.Append(CultureInfo.InvariantCulture, $" {phase[t].Loss:G4} / {phase[t].Gradient:G4} ({phase[t].GradientShare:P1}) |");
            sb.AppendLine();
        }
        return sb.ToString();
    }
}
