using ScottPlot;
using RecDistill.Runs;

namespace RecDistill.Cli;

/// <summary>The comparison's charts (ScottPlot): metric bars per method with the teacher as a reference line, and validation curves.</summary>
public static class ComparisonCharts
{
    public static void Write(string outDir, string title, IReadOnlyList<ComparisonReport.Row> rows,
        IReadOnlyList<RunSummary> records, IReadOnlyList<string> order)
    {
        var teacher = rows.FirstOrDefault(r => r.Method == RunSummary.TeacherMethod);
        var students = rows.Where(r => r.Method != RunSummary.TeacherMethod).ToList();
        if (students.Count > 0)
        {
            Bars(Path.Combine(outDir, "ndcg20.png"), $"{title}: test NDCG@20", "test NDCG@20 (mean over runs)", "ndcg@20", students, teacher);
            Bars(Path.Combine(outDir, "recall20.png"), $"{title}: test Recall@20", "test Recall@20 (mean over runs)", "recall@20", students, teacher);
        }
        Curves(Path.Combine(outDir, "valid-ndcg20.png"), $"{title}: validation NDCG@20", records, order);
    }

    private static void Bars(string path, string title, string yLabel, string metric,
        List<ComparisonReport.Row> students, ComparisonReport.Row? teacher)
    {
        var plot = new Plot();
        var bars = students.Select((r, i) => new Bar
        {
            Position = i, Value = r.Test[metric].Mean, Error = r.Test[metric].Std,
            FillColor = r.Method == "mkd" ? Colors.OrangeRed : r.Method == "scratch" ? Colors.Gray : Colors.SteelBlue,
        }).ToList();
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, students.Count).Select(i => (double)i).ToArray(),
            students.Select(r => r.Method).ToArray());
        plot.Axes.Bottom.Label.Text = "method (student)";
        plot.Axes.Left.Label.Text = yLabel;
        plot.Title(title);
        double top = students.Max(r => r.Test[metric].Mean + r.Test[metric].Std);
        if (teacher is not null)
        {
            var line = plot.Add.HorizontalLine(teacher.Test[metric].Mean, 2, Colors.Black, LinePattern.Dashed);
            line.LegendText = $"teacher ({teacher.Test[metric].Mean:F4})";
            top = Math.Max(top, teacher.Test[metric].Mean);
            plot.ShowLegend(Alignment.LowerRight);
        }
        plot.Axes.SetLimitsY(0, top * 1.12);
        plot.SavePng(path, 900, 500);
    }

    private static void Curves(string path, string title, IReadOnlyList<RunSummary> records, IReadOnlyList<string> order)
    {
        var plot = new Plot();
        var firstSeed = records.Where(r => r.ValidCurve.Count > 0)
            .GroupBy(r => r.Method).Select(g => g.OrderBy(r => r.SeedIndex).First())
            .OrderBy(r => r.Method == RunSummary.TeacherMethod ? -1 : order.ToList().IndexOf(r.Method)).ToList();
        var palette = new ScottPlot.Palettes.Category20();
        int k = 0;
        foreach (var r in firstSeed)
        {
            var line = plot.Add.Scatter(r.ValidCurve.Select(p => p[0]).ToArray(), r.ValidCurve.Select(p => p[1]).ToArray());
            line.LegendText = r.Method;
            line.MarkerSize = 0;
            line.LineWidth = r.Method is "mkd" or RunSummary.TeacherMethod ? 3 : 1.5f;
            // Category20 pairs each dark colour with a light one: the ten dark ones first keep ten
            // methods apart; the light ones only from the eleventh on.
            int c = r.Method == RunSummary.TeacherMethod ? -1 : k++;
            line.Color = c < 0 ? Colors.Black : palette.GetColor(c < 10 ? 2 * c : 2 * (c - 10) + 1);
            if (r.Method == RunSummary.TeacherMethod) line.LinePattern = LinePattern.Dashed;
        }
        plot.Axes.Bottom.Label.Text = "epoch";
        plot.Axes.Left.Label.Text = "validation NDCG@20";
        plot.Title(title);
        plot.ShowLegend(Edge.Right); // outside the data area: the curves stay visible
        plot.SavePng(path, 1000, 550);
    }
}
