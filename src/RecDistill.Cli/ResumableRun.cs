using System.Text.Json;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Cli;

/// <summary>
/// `train`/`distill --resume DIR`: a run directory keeps the arguments that started it (resume.json,
/// paths made absolute), so that a resume repeats exactly the same run and the trainer continues it
/// from DIR/checkpoint.bin.
/// </summary>
public static class ResumableRun
{
    public const string ArgsFile = "resume.json";
    private static readonly string[] Commands = { "train", "distill", "compare" };
    private static readonly string[] PathOptions = { "--data", "--teacher", "--records" };
    private static readonly string[] Overridable = { "--threads", "--device" };

    /// <summary>Set while a command runs as a resume of this run directory.</summary>
    public static string? Directory { get; internal set; }

    private sealed record SavedArgs(string Command, string[] Args);

    /// <summary>Replaces `CMD --resume DIR [--threads N] [--device D]` by the run's own arguments.</summary>
    public static string[] ExpandResume(string[] args)
    {
        int at = Array.FindIndex(args, a => a == "--resume" || a.StartsWith("--resume=", StringComparison.Ordinal));
        if (at < 0) return args;
        string dir = args[at].StartsWith("--resume=", StringComparison.Ordinal) ? args[at]["--resume=".Length..]
            : at + 1 < args.Length ? args[at + 1] : throw new UserErrorException("--resume needs the run directory to continue");
        if (args.Length == 0 || !Commands.Contains(args[0]))
            throw new UserErrorException("--resume continues a train, distill or compare run: recdistill train --resume DIR");
        var file = Path.Combine(dir, ArgsFile);
        if (!File.Exists(file))
            throw new UserErrorException(System.IO.Directory.Exists(dir)
                ? $"{dir} cannot be resumed: it has no {ArgsFile} (was it written by train or distill of this version?)"
                : $"--resume {dir}: no such run directory");
        SavedArgs saved;
        try { saved = JsonSerializer.Deserialize<SavedArgs>(File.ReadAllText(file), JsonOptions.Default) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new UserErrorException($"{file}: not a valid resume record ({e.Message})"); }
        if (saved.Command != args[0])
            throw new UserErrorException($"{dir} is a {saved.Command} run; resume it with recdistill {saved.Command} --resume {dir}");
        if (File.Exists(Path.Combine(dir, RunDirectory.MetricsFile)) && !File.Exists(Path.Combine(dir, TrainingCheckpoint.FileName)))
            throw new UserErrorException($"{dir} already finished (metrics.json is written); nothing to resume");

        var rest = args.Where((_, i) => i != 0 && i != at && !(i == at + 1 && args[at] == "--resume")).ToArray();
        var overrides = new List<string>();
        for (int i = 0; i < rest.Length; i++)
        {
            string name = rest[i].Split('=')[0];
            if (!Overridable.Contains(name))
                throw new UserErrorException($"--resume takes the run's own options; only --threads and --device may be given with it (not {rest[i]})");
            overrides.Add(rest[i]);
            if (!rest[i].Contains('=') && i + 1 < rest.Length) overrides.Add(rest[++i]);
        }
        // Only the option names given again count: a saved value equal to an override's value ("1" of
        // --negatives 1 beside --threads 1) is not an option.
        var overriddenNames = overrides.Where(o => o.StartsWith("--", StringComparison.Ordinal)).Select(o => o.Split('=')[0]).ToHashSet();
        var kept = new List<string> { saved.Command };
        for (int i = 0; i < saved.Args.Length; i++)
        {
            string name = saved.Args[i].Split('=')[0];
            bool overridden = saved.Args[i].StartsWith("--", StringComparison.Ordinal) && overriddenNames.Contains(name);
            bool takesValue = !saved.Args[i].Contains('=') && i + 1 < saved.Args.Length && !saved.Args[i + 1].StartsWith("--", StringComparison.Ordinal);
            if (overridden || name is "--overwrite" or "--out") { if (takesValue && name != "--overwrite") i++; continue; }
            kept.Add(saved.Args[i]);
        }
        kept.AddRange(overrides);
        kept.Add("--out");
        kept.Add(dir);
        Directory = dir;
        return kept.ToArray();
    }

    /// <summary>Writes DIR/resume.json for a new run (input paths absolute, so a resume works from any directory).</summary>
    public static void Record(string dir, string command, string[] args)
    {
        var absolute = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            var eq = a.IndexOf('=');
            string name = eq > 0 ? a[..eq] : a;
            if (name == "--out") { if (eq < 0) i++; continue; } // a resume writes into the directory it is given
            if (PathOptions.Contains(name))
            {
                if (eq > 0) { absolute.Add($"{name}={Path.GetFullPath(a[(eq + 1)..])}"); continue; }
                absolute.Add(a);
                if (i + 1 < args.Length) absolute.Add(Path.GetFullPath(args[++i]));
                continue;
            }
            absolute.Add(a);
        }
        AtomicFile.WriteText(Path.Combine(dir, ArgsFile),
            JsonSerializer.Serialize(new SavedArgs(command, absolute.ToArray()), JsonOptions.Default));
    }
}
