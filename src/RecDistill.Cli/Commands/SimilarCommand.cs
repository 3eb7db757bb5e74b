using System.ComponentModel;
using RecDistill.Serving;
using Spectre.Console;
using Spectre.Console.Cli;

namespace RecDistill.Cli.Commands;

public sealed class SimilarSettings : CommandSettings
{
    [CommandOption("--model <FILE>")]
    [Description("Model file written by export.")]
    public string Model { get; set; } = "";

    [CommandOption("--item <ID>")]
    [Description("An item id of the model: the items that score highest with its vector as the query (dot products, as for users), itself left out.")]
    public string Item { get; set; } = "";

    // Spectre.Console.Cli needs long option names of two or more letters; CliApp turns `--k` into `-k`.
    [CommandOption("-k|--top <N>")]
    [Description("Items to list (also accepted as --k).")]
    [DefaultValue(10)]
    public int K { get; set; } = 10;

    [CommandOption("--out <FILE>")]
    [Description("Write CSV rank,item,score here (atomically; an existing file is replaced) instead of a table.")]
    public string? Out { get; set; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Model)) return ValidationResult.Error("--model FILE is required (a file written by export)");
        if (Item.Trim().Length == 0) return ValidationResult.Error("--item ID is required");
        if (K < 1) return ValidationResult.Error("--k must be at least 1");
        return ValidationResult.Success();
    }
}

/// <summary>`recdistill similar`: item-to-item top-K from an exported model.</summary>
public sealed class SimilarCommand : Command<SimilarSettings>
{
    public override int Execute(CommandContext context, SimilarSettings settings, CancellationToken cancellationToken)
    {
        var recommender = Recommender.Load(settings.Model);
        string id = settings.Item.Trim();
        var list = recommender.Similar(id, settings.K);
        if (settings.Out is not null) RecommendCommand.WriteRankCsv(settings.Out, list);
        else RecommendCommand.ShowTable($"items like {id}: top {list.Count}", $"of {recommender.Model.NumItems:N0} items, by dot product", list);
        return 0;
    }
}
