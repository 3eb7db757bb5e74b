using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text;

namespace RecDistill.Tests.Runs;

/// <summary>
/// The public API is listed in files under docs/api/, so that a change to it shows in review; the CLI
/// uses the library's workflows and no TorchSharp type of its own.
/// </summary>
public class ApiSurfaceTests
{
    [Theory]
    [InlineData("RecDistill")]
    [InlineData("RecDistill.Serving")]
    [InlineData("RecDistill.Serving.Http")]
    public void The_public_api_matches_its_listing(string assemblyName)
    {
        var assembly = Assembly.Load(assemblyName);
        var actual = Listing(assembly);
        var path = Path.Combine(TestData.RepoRoot, "docs", "api", assemblyName + ".txt");
        if (Environment.GetEnvironmentVariable("RECDISTILL_UPDATE_API") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual);
        }
        Assert.True(File.Exists(path), $"{path} is missing: run the tests once with RECDISTILL_UPDATE_API=1 and review it");
        var expected = File.ReadAllText(path);
        var added = actual.Split('\n').Except(expected.Split('\n')).ToList();
        var removed = expected.Split('\n').Except(actual.Split('\n')).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            $"the public API of {assemblyName} changed (rerun with RECDISTILL_UPDATE_API=1 to accept it):\n" +
            string.Concat(added.Select(l => "+ " + l + "\n")) + string.Concat(removed.Select(l => "- " + l + "\n")));
    }

    [Fact]
    public void The_cli_references_no_torchsharp_type()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll");
        using var pe = new PEReader(File.OpenRead(dll));
        var md = pe.GetMetadataReader();
        var torch = md.TypeReferences.Select(h => md.GetTypeReference(h))
            .Select(t => md.GetString(t.Namespace) + "." + md.GetString(t.Name))
            .Where(n => n.StartsWith("TorchSharp", StringComparison.Ordinal)).Distinct().ToList();
        Assert.True(torch.Count == 0, "the CLI uses TorchSharp types: " + string.Join(", ", torch));
        Assert.DoesNotContain(md.AssemblyReferences, r => md.GetString(md.GetAssemblyReference(r).Name) == "TorchSharp");
    }

    [Theory]
    [InlineData("RecDistill.Serving.dll")]
    [InlineData("RecDistill.Serving.Http.dll")]
    public void The_serving_path_references_neither_torchsharp_nor_the_training_library(string file)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, file);
        using var pe = new PEReader(File.OpenRead(dll));
        var md = pe.GetMetadataReader();
        var references = md.AssemblyReferences.Select(r => md.GetString(md.GetAssemblyReference(r).Name)).ToList();
        Assert.DoesNotContain("TorchSharp", references);
        Assert.DoesNotContain("RecDistill", references);
    }

    /// <summary>Every public type and its public and protected members, one line each, sorted.</summary>
    private static string Listing(Assembly assembly)
    {
        var lines = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var type in assembly.GetExportedTypes())
        {
            lines.Add($"{Kind(type)} {Name(type)}");
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var m in type.GetMembers(all))
            {
                string? line = m switch
                {
                    ConstructorInfo c when Visible(c) => $"{Name(type)}({Parameters(c)})",
                    MethodInfo mi when Visible(mi) && !mi.IsSpecialName => $"{Name(type)}.{mi.Name}{Generic(mi)}({Parameters(mi)}) -> {Name(mi.ReturnType)}",
                    MethodInfo op when Visible(op) && op.Name.StartsWith("op_", StringComparison.Ordinal) => $"{Name(type)}.{op.Name}({Parameters(op)}) -> {Name(op.ReturnType)}",
                    PropertyInfo p when (p.GetMethod is { } g && Visible(g)) || (p.SetMethod is { } s && Visible(s)) =>
                        $"{Name(type)}.{p.Name}: {Name(p.PropertyType)} {{{(p.GetMethod is { } g2 && Visible(g2) ? " get;" : "")}{(p.SetMethod is { } s2 && Visible(s2) ? " set;" : "")} }}",
                    FieldInfo f when f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly => type.IsEnum ? (f.IsStatic ? $"{Name(type)}.{f.Name}" : null) : $"{Name(type)}.{f.Name}: {Name(f.FieldType)}",
                    EventInfo e when e.AddMethod is { } a && Visible(a) => $"{Name(type)}.{e.Name}: event {Name(e.EventHandlerType!)}",
                    _ => null,
                };
                if (line is not null) lines.Add(line);
            }
        }
        var sb = new StringBuilder();
        foreach (var l in lines) sb.Append(l).Append('\n');
        return sb.ToString();
    }

    private static bool Visible(MethodBase m) => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly;

    private static string Kind(Type t) => t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct"
        : typeof(Delegate).IsAssignableFrom(t) ? "delegate" : t.IsAbstract && t.IsSealed ? "static class" : "class";

    private static string Generic(MethodInfo m) => m.IsGenericMethodDefinition ? "<" + string.Join(",", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p => Name(p.ParameterType) + " " + p.Name));

    private static string Name(Type t)
    {
        if (t.IsGenericParameter) return t.Name;
        if (t.IsByRef) return Name(t.GetElementType()!) + "&";
        if (t.IsArray) return Name(t.GetElementType()!) + "[]";
        if (t.IsPointer) return Name(t.GetElementType()!) + "*";
        var name = (t.IsNested ? Name(t.DeclaringType!) + "+" : t.Namespace + ".") + t.Name;
        if (!t.IsGenericType) return name;
        int tick = name.IndexOf('`');
        if (tick >= 0) name = name[..tick];
        return name + "<" + string.Join(",", t.GetGenericArguments().Select(Name)) + ">";
    }
}
