using System.ComponentModel;
using Microsoft.Extensions.Logging;
using RecDistill.Runs;
using RecDistill.Serving.Http;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

[OnlyFor("--index", "exact", "hnsw", "the HNSW index's search width, for --index", "--hnsw-candidates")]
public sealed class ServeSettings : CommandSettings
{
    [CommandOption("--model <FILE>")]
    [Description("Model file written by export. Replacing it (atomically, e.g. export again) loads the new model beside the old one.")]
    public string Model { get; set; } = "";

    [CommandOption("--urls <URLS>")]
    [Description("Where to listen, semicolon-separated (port 0: a free port, printed at start).")]
    [DefaultValue("http://127.0.0.1:8080")]
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    [CommandOption("--index <KIND>")]
    [Description("exact (every item scored: the trained model's ranking) | hnsw (approximate USearch graph, inner product: for large catalogues; may miss items).")]
    [DefaultValue("exact")]
    public string Index { get; set; } = "exact";

    [CommandOption("--hnsw-candidates <N>")]
    [Description("hnsw: candidates fetched per query and rescored exactly (more: better recall, slower).")]
    [DefaultValue(128)]
    public int HnswCandidates { get; set; } = 128;

    [CommandOption("--max-k <N>")]
    [Description("The largest k a request may ask for (more is answered 400).")]
    [DefaultValue(1000)]
    public int MaxK { get; set; } = 1000;

    [CommandOption("--max-batch <N>")]
    [Description("The most users in one POST /v1/recommendations (more is answered 413).")]
    [DefaultValue(1000)]
    public int MaxBatch { get; set; } = 1000;

    [CommandOption("--no-watch")]
    [Description("Do not reload when the model file changes (POST /admin/reload from loopback still does).")]
    public bool NoWatch { get; set; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Model)) return ValidationResult.Error("--model FILE is required (a file written by export)");
        if (ParseIndex(Index) is null) return ValidationResult.Error($"--index '{Index}' is not exact or hnsw");
        if (string.IsNullOrWhiteSpace(Urls)) return ValidationResult.Error("--urls is empty");
        if (new ServingOptions { ModelPath = "-", Urls = Urls }.Check() is { } urls) return ValidationResult.Error("--urls: " + urls);
        if (HnswCandidates < 1) return ValidationResult.Error("--hnsw-candidates must be at least 1");
        if (MaxK < 1) return ValidationResult.Error("--max-k must be at least 1");
        if (MaxBatch < 1) return ValidationResult.Error("--max-batch must be at least 1");
        return ValidationResult.Success();
    }

    public static IndexKind? ParseIndex(string s) => s.ToLowerInvariant() switch
    {
        "exact" => IndexKind.Exact,
        "hnsw" => IndexKind.Hnsw,
        _ => null,
    };
}

/// <summary>
/// `recdistill serve`: the exported model over HTTP (RecDistill.Serving.Http, no TorchSharp). Runs until
/// SIGTERM or Ctrl+C, then stops accepting, lets requests in flight finish and exits 0.
/// </summary>
public sealed class ServeCommand : Command<ServeSettings>
{
    public override int Execute(CommandContext context, ServeSettings settings, CancellationToken cancellationToken)
    {
        if (Directory.Exists(settings.Model)) throw new UserErrorException($"--model {settings.Model} is a directory: give the file written by export (run export first)");
        if (!File.Exists(settings.Model)) throw new UserErrorException($"--model {settings.Model}: no such file");
        var options = new ServingOptions
        {
            ModelPath = settings.Model,
            Urls = settings.Urls,
            Index = ServeSettings.ParseIndex(settings.Index)!.Value,
            Hnsw = new HnswOptions { Candidates = settings.HnswCandidates },
            MaxK = settings.MaxK,
            DefaultK = Math.Min(20, settings.MaxK),
            MaxBatchUsers = settings.MaxBatch,
            WatchFile = !settings.NoWatch,
        };
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            // A failure to start (a port in use) is one error line from CliErrors: the host's own log of it
            // would print the exception's stack trace first.
            app = ServingHost.Build(options, b => b.Logging.AddFilter("Microsoft.Extensions.Hosting", Microsoft.Extensions.Logging.LogLevel.None));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new UserErrorException($"--index hnsw needs USearch's native library, which did not load here ({e.Message}); use --index exact");
        }
        using (app)
        {
            var info = app.Services.GetService(typeof(ModelStore)) is ModelStore store ? store.Current : null;
            if (info is not null)
                AnsiConsole.MarkupLine(Markup.Escape($"serving {settings.Model}: {info.Users:N0} users, {info.Items:N0} items, d={info.Dim}, {info.Precision}, {info.Index} index (loaded in {info.LoadSeconds * 1000:F0} ms)"));
            app.Run();
        }
        return 0;
    }
}
