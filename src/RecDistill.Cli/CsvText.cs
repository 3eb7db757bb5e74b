using System.Text;
using RecDistill.Training;
using Spectre.Console;

namespace RecDistill.Cli;

/// <summary>CSV output as RFC 4180 writes it: a field with a comma, a quote, a line break or outer spaces goes in double quotes, its quotes doubled.</summary>
public static class CsvText
{
    public static string Field(string value)
    {
        bool quote = value.Length > 0 && (value.AsSpan().IndexOfAny(",\"\r\n") >= 0 || value[0] == ' ' || value[^1] == ' ');
        return quote ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }

    /// <summary>
    /// Refuses an --out that names a directory (a file is written there; <paramref name="example"/> is a name to
    /// suggest), or a file of the run directory <paramref name="runDir"/> itself, which it would replace.
    /// </summary>
    public static void CheckOutFile(string path, string example, string? runDir = null)
    {
        if (Directory.Exists(path))
            throw new UserErrorException($"--out {path} is a directory: give the file to write (e.g. {Path.Combine(path, example)})");
        if (runDir is not null && string.Equals(Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(path))!), Path.GetFullPath(runDir).TrimEnd('/'), StringComparison.Ordinal)
            && File.Exists(path))
            throw new UserErrorException($"--out {path} is a file of the run {runDir} itself, which it would replace: write elsewhere");
    }

    /// <summary>To <paramref name="path"/> atomically (saying so, with <paramref name="what"/>), or to standard output when null.</summary>
    public static void Write(string? path, string text, string what)
    {
        if (path is null)
        {
            Console.Out.Write(text);
            Console.Out.Flush();
            return;
        }
        CheckOutFile(path, "recommendations.csv");
        bool stream = AtomicFile.IsSpecialFile(path); // /dev/stdout and the like: the CSV alone goes there
        AtomicFile.WriteText(path, text);
        if (!stream) AnsiConsole.MarkupLine($"wrote [blue]{Markup.Escape(path)}[/] ({Markup.Escape(what)})");
    }
}

/// <summary>A comma-separated list of ids on the command line, read as one CSV record: "a,b" in double quotes is one id.</summary>
public sealed record ItemList(IReadOnlyList<string>? Ids, string? Problem)
{
    public static ItemList Parse(string text)
    {
        var ids = new List<string>();
        var field = new StringBuilder();
        int i = 0;
        while (true)
        {
            while (i < text.Length && text[i] == ' ') i++;
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i == text.Length) return new(null, "a quoted id is never closed");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    field.Append(text[i++]);
                }
                while (i < text.Length && text[i] == ' ') i++;
                if (i < text.Length && text[i] != ',') return new(null, "text after the closing quote of an id");
            }
            else
            {
                while (i < text.Length && text[i] != ',')
                {
                    if (text[i] == '"') return new(null, "a quote inside an unquoted id; quote the whole id and double the quote");
                    field.Append(text[i++]);
                }
            }
            string id = field.ToString().Trim();
            if (id.Length == 0) return new(null, "an empty id (two commas in a row, or a comma at an end?)");
            ids.Add(id);
            field.Clear();
            if (i == text.Length) return new(ids, null);
            i++; // the comma
        }
    }
}
