using System.Globalization;
using System.Reflection;
using Spectre.Console.Cli;

namespace RecDistill.Cli;

/// <summary>Options a settings class inherits but its command does not take: not accepted, not in its --help.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NotTakenAttribute(params string[] options) : Attribute
{
    public IReadOnlyList<string> Options { get; } = options;
    /// <summary>What to do instead, shown when one of them is given.</summary>
    public string? Hint { get; init; }
}

/// <summary>An inherited option's help text as it is true for this command.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class OptionTextAttribute(string option, string text) : Attribute
{
    public string Option { get; } = option;
    public string Text { get; } = text;
}

/// <summary>Options that only mean something together with another one (e.g. data cleaning without --data).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class OnlyWithAttribute(string required, string reason, params string[] options) : Attribute
{
    public string Required { get; } = required;
    public string Reason { get; } = reason;
    public IReadOnlyList<string> Options { get; } = options;
    /// <summary>What the command works on without <see cref="Required"/> (e.g. "synthetic data"): the message then says the option has no effect with it.</summary>
    public string? Without { get; init; }
}

/// <summary>A flag that changes what the command does so that only some of its options mean anything with it (e.g. --report-only).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class TakesOnlyWithAttribute(string flag, string reason, params string[] options) : Attribute
{
    public string Flag { get; } = flag;
    public string Reason { get; } = reason;
    public IReadOnlyList<string> Options { get; } = options;
}

/// <summary>
/// Options that mean something only for some values of another option (e.g. distill's NKD settings
/// for the methods with NKD in them); <paramref name="fallback"/> is that option's default.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class OnlyForAttribute(string option, string fallback, string values, string what, params string[] options) : Attribute
{
    public string Option { get; } = option;
    public string Fallback { get; } = fallback;
    /// <summary>The values (comma-separated, any case) for which <see cref="Options"/> have an effect.</summary>
    public IReadOnlyList<string> Values { get; } = values.Split(',');
    public string What { get; } = what;
    public IReadOnlyList<string> Options { get; } = options;
}

/// <summary>Options that mean nothing once a flag is given (e.g. compare's --seeds with --teachers).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NotWithAttribute(string flag, string reason, params string[] options) : Attribute
{
    public string Flag { get; } = flag;
    public string Reason { get; } = reason;
    public IReadOnlyList<string> Options { get; } = options;
}

/// <summary>
/// Checks a command line against the options its command takes before anything runs: unknown options,
/// options of another command, stray arguments, missing and malformed values, options given twice.
/// Each mistake is one line naming the option (with a suggestion where one is close); nothing is
/// guessed and nothing is written.
/// </summary>
public static class StrictArguments
{
    /// <summary>One option as the command takes it.</summary>
    public sealed record OptionSpec(string Name, IReadOnlyList<string> Aliases, Type Type, bool TakesValue, bool Repeatable, string? ValueName);

    /// <summary>The options a settings type takes: its [CommandOption] properties less those marked [NotTaken].</summary>
    public static IReadOnlyList<OptionSpec> OptionsOf(Type settings)
    {
        var notTaken = NotTaken(settings);
        var result = new List<OptionSpec>();
        foreach (var p in settings.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var a = p.GetCustomAttribute<CommandOptionAttribute>();
            if (a is null) continue;
            var names = a.LongNames.Select(n => "--" + n).Concat(a.ShortNames.Select(n => "-" + n)).ToList();
            if (names.Any(notTaken.Contains)) continue;
            var type = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            bool isFlag = type == typeof(bool) && a.ValueName is null;
            result.Add(new OptionSpec(names[0], names, type.IsArray ? type.GetElementType()! : type, !isFlag, type.IsArray, a.ValueName));
        }
        return result;
    }

    public static HashSet<string> NotTaken(Type settings) =>
        settings.GetCustomAttributes<NotTakenAttribute>().SelectMany(a => a.Options).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The first mistake in <paramref name="args"/> (the words after the command's name), or null.
    /// <paramref name="others"/>: every command's options, to name the command an option belongs to.
    /// </summary>
    public static string? Check(string command, Type settings, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, Type> others)
    {
        var options = OptionsOf(settings);
        var byName = new Dictionary<string, OptionSpec>(StringComparer.Ordinal);
        foreach (var o in options) foreach (var n in o.Aliases) byName[n] = o;
        var given = new HashSet<string>(StringComparer.Ordinal);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string word = args[i];
            if (word is "-h" or "--help" or "-?") return null; // Spectre prints the command's help
            if (!word.StartsWith('-') || word == "-" || IsNumber(word))
                return $"{command}: unexpected argument '{word}' (every value follows its option, e.g. --data PATH)";
            if (word == "--")
                return $"{command}: unexpected '--' (every value follows its option)";
            string name = word;
            string? inline = null;
            int cut = word.IndexOfAny(new[] { '=', ':' });
            if (cut > 0) { name = word[..cut]; inline = word[(cut + 1)..]; }
            if (!byName.TryGetValue(name, out var spec))
                return Unknown(command, settings, name, options, others);
            if (!given.Add(spec.Name) && !spec.Repeatable)
                return $"{command}: {spec.Name} is given twice";
            if (!spec.TakesValue)
            {
                if (inline is not null) return $"{command}: {spec.Name} takes no value (not '{inline}')";
                continue;
            }
            string? value = inline;
            if (value is null)
            {
                if (i + 1 >= args.Count || (args[i + 1].StartsWith('-') && !IsNumber(args[i + 1]) && args[i + 1] != "-"))
                    return $"{command}: {spec.Name} needs a value ({Expected(spec)})";
                value = args[++i];
            }
            if (ValueError(spec, value) is { } error) return $"{command}: {spec.Name}: {error}";
            values[spec.Name] = value;
        }
        foreach (var rule in settings.GetCustomAttributes<OnlyWithAttribute>())
        {
            if (given.Contains(rule.Required)) continue;
            var orphan = rule.Options.FirstOrDefault(given.Contains);
            if (orphan is not null)
                return rule.Without is null
                    ? $"{command}: {orphan} needs {rule.Required} ({rule.Reason})"
                    : $"{command}: {orphan} has no effect with {rule.Without} ({rule.Reason})";
        }
        foreach (var rule in settings.GetCustomAttributes<TakesOnlyWithAttribute>())
        {
            if (!given.Contains(rule.Flag)) continue;
            var idle = given.FirstOrDefault(g => g != rule.Flag && !rule.Options.Contains(g));
            if (idle is not null)
                return $"{command}: {idle} has no effect with {rule.Flag} ({rule.Reason}; it takes {string.Join(", ", rule.Options)})";
        }
        // Before the value rules: with compare --teachers, --layers is idle because the teachers are given, whatever
        // --model's default says.
        foreach (var rule in settings.GetCustomAttributes<NotWithAttribute>())
        {
            if (!given.Contains(rule.Flag)) continue;
            var idle = rule.Options.FirstOrDefault(given.Contains);
            if (idle is not null) return $"{command}: {idle} has no effect with {rule.Flag} ({rule.Reason})";
        }
        foreach (var rule in settings.GetCustomAttributes<OnlyForAttribute>())
        {
            string value = (values.GetValueOrDefault(rule.Option) ?? rule.Fallback).ToLowerInvariant();
            if (rule.Values.Contains(value)) continue;
            var idle = rule.Options.FirstOrDefault(given.Contains);
            if (idle is not null)
                return $"{command}: {idle} has no effect with {rule.Option} {value} ({rule.What} {string.Join(", ", rule.Values)})";
        }
        return null;
    }

    private static string Unknown(string command, Type settings, string name, IReadOnlyList<OptionSpec> options,
        IReadOnlyDictionary<string, Type> others)
    {
        var message = $"{command}: unknown option '{name}'";
        if (NotTaken(settings).Contains(name))
        {
            var hint = settings.GetCustomAttributes<NotTakenAttribute>().First(a => a.Options.Contains(name)).Hint;
            return $"{command} does not take {name}" + (hint is null ? "" : $": {hint}");
        }
        var owners = others.Where(kv => kv.Key != command && OptionsOf(kv.Value).Any(o => o.Aliases.Contains(name)))
            .Select(kv => kv.Key).ToList();
        var close = options.SelectMany(o => o.Aliases.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
            .Select(a => (Name: a, Distance: Distance(name, a)))
            .Where(x => x.Distance <= Math.Max(1, name.Length / 4))
            .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal).Select(x => x.Name).FirstOrDefault();
        if (owners.Count > 0) message += $" (an option of {string.Join(", ", owners)})";
        if (close is not null) message += $"; did you mean '{close}'?";
        else message += $"; see recdistill {command} --help";
        return message;
    }

    private static bool IsNumber(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    private static string Expected(OptionSpec spec) => spec.Type switch
    {
        var t when t == typeof(int) || t == typeof(long) => "a whole number",
        var t when t == typeof(double) || t == typeof(float) => "a number",
        var t when t == typeof(bool) => "true or false",
        _ => spec.ValueName is null ? "a value" : spec.ValueName.Trim('<', '>'),
    };

    private static string? ValueError(OptionSpec spec, string value)
    {
        var inv = CultureInfo.InvariantCulture;
        if (spec.Type == typeof(int))
            return int.TryParse(value, NumberStyles.AllowLeadingSign, inv, out _) ? null
                : long.TryParse(value, NumberStyles.AllowLeadingSign, inv, out _) ? $"'{value}' is too large" : $"'{value}' is not a whole number";
        if (spec.Type == typeof(long))
            return long.TryParse(value, NumberStyles.AllowLeadingSign, inv, out _) ? null : $"'{value}' is not a whole number";
        if (spec.Type == typeof(double) || spec.Type == typeof(float))
            return double.TryParse(value, NumberStyles.Float, inv, out var d) && double.IsFinite(d) ? null : $"'{value}' is not a number";
        if (spec.Type == typeof(bool))
            return value.ToLowerInvariant() is "true" or "false" ? null : $"'{value}' is not true or false";
        if (value.Length == 0) return "the value is empty";
        return null;
    }

    /// <summary>Edit distance (insertions, deletions, substitutions), for "did you mean".</summary>
    public static int Distance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
