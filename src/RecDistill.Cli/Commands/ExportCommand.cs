using System.ComponentModel;
using System.Globalization;
using RecDistill.Data;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Serving;
using RecDistill.Training;
using Spectre.Console;
using Spectre.Console.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Cli.Commands;

public sealed class ExportSettings : CommandSettings
{
    [CommandOption("--model <DIR>")]
    [Description("Run directory written by train or distill (its run.json rebuilds the data for the id maps and train items).")]
    public string ModelDir { get; set; } = "";

    [CommandOption("--out <FILE>")]
    [Description("Model file to write, e.g. student.rdm (written atomically; an existing file is replaced).")]
    public string Out { get; set; } = "";

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
    /// <summary>Users compared for the quantisation check (evenly spaced; all when fewer).</summary>
    public const int CheckUsers = 2000;

    public override int Execute(CommandContext context, ExportSettings settings, CancellationToken cancellationToken)
    {
        var precision = ExportSettings.ParsePrecision(settings.Precision)!.Value;
        var device = RunWorkflow.SetupTorch("cpu", settings.Threads);
        var (record, _, data, model) = RunWorkflow.LoadRun(settings.ModelDir, device);
        using var _model = model;
        var (users, items) = ModelExport.FinalVectors(model);
        int layers = model is LightGcn g ? g.Layers : 0;
        CompactModel Build(VectorPrecision p) => ModelExport.ToCompact(model, users, items, data, p);

        Build(precision).Save(settings.Out);
        // Read back what a server will read: proves the file is whole, and the check below uses it.
        var written = CompactModel.Load(settings.Out);
        long size = new FileInfo(settings.Out).Length;
        long fp32Size = CompactModelFile.LengthOf(written.Dim, written.NumUsers, written.NumItems, VectorPrecision.Fp32, written.TrainPairs);

        var t = new Table().Border(TableBorder.Rounded).Title($"exported [blue]{Markup.Escape(settings.Out)}[/]");
        t.AddColumn("field");
        t.AddColumn(new TableColumn("value").RightAligned());
        void Row(string k, string v) => t.AddRow(Markup.Escape(k), Markup.Escape(v));
        string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        Row("model", $"{record.Model.Backbone.ToString().ToLowerInvariant()} d={written.Dim}" + (layers > 0 ? $", {layers} layers (propagated vectors)" : ""));
        Row("precision", Name(precision));
        Row("users / items", $"{N(written.NumUsers)} / {N(written.NumItems)}");
        Row("train pairs (seen items)", N(written.TrainPairs));
        Row("file size", $"{N(size)} bytes ({size / 1048576.0:F2} MiB)");
        if (precision != VectorPrecision.Fp32) Row("size / fp32 size", (size / (double)fp32Size).ToString("F3", CultureInfo.InvariantCulture));
        AnsiConsole.Write(t);

        if (precision != VectorPrecision.Fp32 && !settings.NoCheck)
            AnsiConsole.Write(AccuracyCheck(Build(VectorPrecision.Fp32), written, data, fp32Size, size, settings.Threads ?? Environment.ProcessorCount));
        return 0;
    }

    private static string Name(VectorPrecision p) => p.ToString().ToLowerInvariant();

    /// <summary>The quantised file against exact fp32 vectors: top-20 agreement and the test metrics of both.</summary>
    private static Table AccuracyCheck(CompactModel exact, CompactModel quantized, SplitDataset data, long fp32Size, long size, int threads)
    {
        var sample = RankingOverlap.SampleUsers(exact, CheckUsers);
        double overlap = RankingOverlap.Mean(new Recommender(exact), new Recommender(quantized), sample, 20, threads);
        var evaluator = new FullRankingEvaluator(data);
        EvaluationResult Test(CompactModel m)
        {
            var (u, i) = Dequantized(m);
            using var ut = torch.tensor(u, m.NumUsers, m.Dim);
            using var it = torch.tensor(i, m.NumItems, m.Dim);
            return evaluator.Evaluate(ut, it, EvalSplit.Test);
        }
        var e = Test(exact);
        var q = Test(quantized);
        string F(double v) => v.ToString("F5", CultureInfo.InvariantCulture);
        var t = new Table().Border(TableBorder.Rounded)
            .Title($"accuracy cost of {Name(quantized.Precision)} (overlap on {sample.Length:N0} users; test metrics on {e.Users:N0})");
        foreach (var c in new[] { "precision", "file bytes", "test recall@20", "test ndcg@20", "top-20 overlap vs fp32" })
            t.AddColumn(c == "precision" ? new TableColumn(c) : new TableColumn(c).RightAligned());
        t.AddRow("fp32", fp32Size.ToString("N0", CultureInfo.InvariantCulture), F(e["recall@20"]), F(e["ndcg@20"]), "1.00000");
        t.AddRow(Name(quantized.Precision), size.ToString("N0", CultureInfo.InvariantCulture), F(q["recall@20"]), F(q["ndcg@20"]), F(overlap));
        return t;
    }

    private static (float[] Users, float[] Items) Dequantized(CompactModel m)
    {
        var u = new float[(long)m.NumUsers * m.Dim];
        var i = new float[(long)m.NumItems * m.Dim];
        for (int x = 0; x < m.NumUsers; x++) m.UserVector(x, u.AsSpan(x * m.Dim, m.Dim));
        for (int x = 0; x < m.NumItems; x++) m.ItemVector(x, i.AsSpan(x * m.Dim, m.Dim));
        return (u, i);
    }
}

/// <summary>From a trained model and its data to a <see cref="CompactModel"/>: what `export` writes.</summary>
public static class ModelExport
{
    /// <summary>The model's final user and item vectors (LightGCN: after propagation), row-major, on the CPU.</summary>
    public static (float[] Users, float[] Items) FinalVectors(IRecommender model)
    {
        using var _ = torch.no_grad();
        var (u, i) = model.FinalEmbeddings();
        using (u) using (i)
            return (TensorCopy.ToArray<float>(u), TensorCopy.ToArray<float>(i));
    }

    public static CompactModel ToCompact(IRecommender model, SplitDataset data, VectorPrecision precision)
    {
        var (users, items) = FinalVectors(model);
        return ToCompact(model, users, items, data, precision);
    }

    /// <summary>Final vectors, the data's raw id maps and its train items (the items to leave out when serving).</summary>
    public static CompactModel ToCompact(IRecommender model, float[] users, float[] items, SplitDataset data, VectorPrecision precision)
    {
        if (model.NumUsers != data.NumUsers || model.NumItems != data.NumItems)
            throw new ArgumentException($"the model has {model.NumUsers} users and {model.NumItems} items but the data has {data.NumUsers} and {data.NumItems}");
        var backbone = model.Backbone == Backbone.LightGcn ? ModelBackbone.LightGcn : ModelBackbone.Bpr;
        int layers = model is LightGcn g ? g.Layers : 0;
        return CompactModel.Create(backbone, layers, model.Dim, users, items, data.UserRawIds, data.ItemRawIds, data.Train, precision);
    }
}
