using System.ComponentModel;
using System.Globalization;
using RecDistill.Data;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using RecDistill.Runs;

namespace RecDistill.Cli.Commands;

[OnlyFor("--precision", "fp32", "fp16,int8", "the accuracy cost of a reduced precision, measured for --precision", "--no-check")]
public sealed class ExportSettings : CommandSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Run directory written by train or distill (its run.json rebuilds the data for the id maps and train items).")]
    public string ModelDir { get; set; } = "";

    [CommandOption("--out <PATH>")]
    [Description("rdm: the model file to write, e.g. student.rdm (written atomically; an existing file is replaced). npy: a directory for users.npy, items.npy, user_ids.txt and item_ids.txt.")]
    public string Out { get; set; } = "";

    [CommandOption("--format <FORMAT>")]
    [Description("rdm (the compact serving file) | npy (float32 matrices and id lists for numpy; docs/serving.md).")]
    [DefaultValue("rdm")]
    public string Format { get; set; } = "rdm";

    [CommandOption("--precision <P>")]
    [Description("fp32 (exact) | fp16 (half the vector bytes) | int8 (a byte per value plus a float scale per vector).")]
    [DefaultValue("fp32")]
    public string Precision { get; set; } = "fp32";

    [CommandOption("--threads <N>")]
    [Description("CPU threads. Default: all cores.")]
    public int? Threads { get; set; }

    [CommandOption("--no-check")]
    [Description("fp16/int8: skip measuring the accuracy cost (top-20 overlap with fp32, test Recall/NDCG@20 of both).")]
    public bool NoCheck { get; set; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(ModelDir)) return ValidationResult.Error("--model DIR is required (a run directory written by train or distill)");
        if (string.IsNullOrEmpty(Out)) return ValidationResult.Error("--out FILE is required");
        if (ParsePrecision(Precision) is null) return ValidationResult.Error($"--precision '{Precision}' is not one of fp32, fp16, int8");
        if (Format.ToLowerInvariant() is not ("rdm" or "npy")) return ValidationResult.Error($"--format '{Format}' is not rdm or npy");
        if (Format.ToLowerInvariant() == "npy" && ParsePrecision(Precision) != VectorPrecision.Fp32)
            return ValidationResult.Error("--format npy writes float32 vectors: --precision applies to rdm only");
        if (Threads is < 1) return ValidationResult.Error("--threads must be at least 1");
        return ValidationResult.Success();
    }

    public static VectorPrecision? ParsePrecision(string s) => s.ToLowerInvariant() switch
    {
        "fp32" or "float32" or "f32" => VectorPrecision.Fp32,
        "fp16" or "float16" or "f16" or "half" => VectorPrecision.Fp16,
        "int8" or "i8" => VectorPrecision.Int8,
        _ => null,
    };
}

/// <summary>
/// `recdistill export`: writes a run's final vectors (LightGCN: after propagation), raw id maps and
/// train items into one compact serving file (format: docs/serving.md).
/// </summary>
public sealed class ExportCommand : Command<ExportSettings>
{
    public override int Execute(CommandContext context, ExportSettings settings, CancellationToken cancellationToken)
    {
        var precision = ExportSettings.ParsePrecision(settings.Precision)!.Value;
        if (settings.Format.ToLowerInvariant() == "npy")
        {
            foreach (var file in ModelExport.ExportNpy(settings.ModelDir, settings.Out, settings.Threads, ConsoleReporter.Instance))
                AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(file)}[/]");
            return 0;
        }
        var e = ModelExport.Export(settings.ModelDir, settings.Out!, precision, !settings.NoCheck, settings.Threads, ConsoleReporter.Instance);
        var t = new Table().Border(TableBorder.Rounded).Title($"exported [blue]{Markup.Escape(e.File)}[/]");
        t.AddColumn("field");
        t.AddColumn(new TableColumn("value").RightAligned());
        void Row(string k, string v) => t.AddRow(Markup.Escape(k), Markup.Escape(v));
        string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        Row("model", $"{e.Backbone.ToString().ToLowerInvariant()} d={e.Dim}" + (e.Layers > 0 ? $", {e.Layers} layers (propagated vectors)" : ""));
        Row("precision", Name(precision));
        Row("users / items", $"{N(e.Users)} / {N(e.Items)}");
        Row("train pairs (seen items)", N(e.TrainPairs));
        Row("file size", $"{N(e.Bytes)} bytes ({e.Bytes / 1048576.0:F2} MiB)");
        if (precision != VectorPrecision.Fp32) Row("size / fp32 size", (e.Bytes / (double)e.Fp32Bytes).ToString("F3", CultureInfo.InvariantCulture));
        AnsiConsole.Write(t);
        if (e.Check is { } c)
        {
            string F(double v) => v.ToString("F5", CultureInfo.InvariantCulture);
            var q = new Table().Border(TableBorder.Rounded)
                .Title($"accuracy cost of {Name(precision)} (overlap on {c.SampledUsers:N0} users; test metrics on {c.TestUsers:N0})");
            foreach (var col in new[] { "precision", "file bytes", "test recall@20", "test ndcg@20", "top-20 overlap vs fp32" })
                q.AddColumn(col == "precision" ? new TableColumn(col) : new TableColumn(col).RightAligned());
            q.AddRow("fp32", N(e.Fp32Bytes), F(c.Fp32Recall20), F(c.Fp32Ndcg20), "1.00000");
            q.AddRow(Name(precision), N(e.Bytes), F(c.Recall20), F(c.Ndcg20), F(c.Top20Overlap));
            AnsiConsole.Write(q);
        }
        return 0;
    }

    private static string Name(VectorPrecision p) => p.ToString().ToLowerInvariant();
}
