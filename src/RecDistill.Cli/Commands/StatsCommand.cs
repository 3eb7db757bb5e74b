using System.Globalization;
using RecDistill.Data;
using RecDistill.Runs;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

/// <summary>`recdistill stats`: dataset statistics after cleaning and splitting.</summary>
public sealed class StatsCommand : Command<DataSettings>
{
    public override int Execute(CommandContext context, DataSettings settings, CancellationToken cancellationToken)
    {
        var options = settings.ToOptions();
        var data = Workflow.LoadData(options, ConsoleReporter.Instance);
        var s = DatasetStatistics.Compute(data);
        var t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(data.Name));
        t.AddColumn("statistic");
        t.AddColumn(new TableColumn("value").RightAligned());
        void Row(string k, string v) => t.AddRow(Markup.Escape(k), Markup.Escape(v));
        string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        Row("users", N(s.Users));
        Row("items", N(s.Items));
        Row("pairs", N(s.Pairs));
        Row("train / valid / test", $"{N(s.Train)} / {N(s.Valid)} / {N(s.Test)}");
        Row("density", s.Density.ToString("P3", CultureInfo.InvariantCulture));
        Row("interactions per user (min / median / max)", $"{s.MinPerUser} / {s.MedianPerUser} / {s.MaxPerUser}");
        Row("items without a train interaction", N(s.ItemsWithoutTrain));
        Row("users without a validation item", N(data.Valid.Count(v => v.Length == 0)));
        Row("users without a test item", N(data.Test.Count(v => v.Length == 0)));
        AnsiConsole.Write(t);
        foreach (var line in data.Log) AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        return 0;
    }
}
