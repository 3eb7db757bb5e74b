// Lists the public TorchSharp members that create a TorchSharp.Scalar inside their own body, for
// the build-time check of build/RecDistill.Analyzers (rule RD0002). How: every method body in
// TorchSharp.dll is decoded from its IL; a method creates a Scalar when it calls one of Scalar's
// conversion operators, ScalarExtensionMethods.ToScalar or Scalar's constructor, or calls
// (directly or through any chain of calls, lambdas included) a TorchSharp method that does. The
// public members among them, except those that return the Scalar to the caller (rule RD0001
// covers those at the call site), are written with their documentation ids. None of TorchSharp
// 0.107.0's creators disposes the Scalar it creates (checked here: no call to Scalar.Dispose in any
// of them), so none is exempt.
// Usage: dotnet run build/scalar-scan.cs -- ~/.nuget/packages/torchsharp/<version>/lib/net8.0/TorchSharp.dll build/ScalarCreatingMembers.txt
// (written to a file, not to standard output, where `dotnet run` may print build warnings)
#:package Microsoft.CodeAnalysis.CSharp@4.14.0
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

if (args.Length != 2) throw new ArgumentException("usage: scalar-scan.cs PATH/TorchSharp.dll OUTPUT.txt");
string dll = args[0];
using var pe = new PEReader(File.OpenRead(dll));
var md = pe.GetMetadataReader();

// Operand sizes of every IL opcode, from System.Reflection.Emit's table.
var oneByte = new OpCode[256];
var twoByte = new OpCode[256];
foreach (var f in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
{
    var op = (OpCode)f.GetValue(null)!;
    if (op.Size == 1) oneByte[(byte)op.Value] = op; else twoByte[(byte)(op.Value & 0xff)] = op;
}

string TypeName(EntityHandle t) => t.Kind switch
{
    HandleKind.TypeReference => md.GetString(md.GetTypeReference((TypeReferenceHandle)t).Name),
    HandleKind.TypeDefinition => md.GetString(md.GetTypeDefinition((TypeDefinitionHandle)t).Name),
    _ => "?",
};
EntityHandle Definition(EntityHandle h) =>
    h.Kind == HandleKind.MethodSpecification ? md.GetMethodSpecification((MethodSpecificationHandle)h).Method : h;
string QualifiedName(EntityHandle h)
{
    h = Definition(h);
    if (h.Kind == HandleKind.MethodDefinition)
    {
        var m = md.GetMethodDefinition((MethodDefinitionHandle)h);
        return TypeName(m.GetDeclaringType()) + "::" + md.GetString(m.Name);
    }
    if (h.Kind == HandleKind.MemberReference)
    {
        var m = md.GetMemberReference((MemberReferenceHandle)h);
        return TypeName(m.Parent) + "::" + md.GetString(m.Name);
    }
    return "?";
}
bool CreatesScalar(string callee) =>
    callee is "Scalar::op_Implicit" or "Scalar::op_Explicit" or "Scalar::.ctor" or "ScalarExtensionMethods::ToScalar" or "ScalarExtensionMethods::ToBFloat16Scalar";

var callees = new Dictionary<MethodDefinitionHandle, List<EntityHandle>>();
var creators = new HashSet<MethodDefinitionHandle>();
int disposing = 0;
foreach (var handle in md.MethodDefinitions)
{
    var method = md.GetMethodDefinition(handle);
    if (method.RelativeVirtualAddress == 0) continue;
    var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
    var targets = new List<EntityHandle>();
    while (il.RemainingBytes > 0)
    {
        byte b = il.ReadByte();
        var op = b == 0xFE ? twoByte[il.ReadByte()] : oneByte[b];
        switch (op.OperandType)
        {
            case OperandType.InlineMethod:
                var target = MetadataTokens.EntityHandle(il.ReadInt32());
                if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj || op == OpCodes.Ldftn || op == OpCodes.Ldvirtftn)
                    targets.Add(target);
                break;
            case OperandType.InlineSwitch: il.Offset += 4 * il.ReadInt32(); break;
            case OperandType.InlineNone: break;
            case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.Offset += 1; break;
            case OperandType.InlineVar: il.Offset += 2; break;
            case OperandType.InlineI8 or OperandType.InlineR: il.Offset += 8; break;
            default: il.Offset += 4; break;
        }
    }
    callees[handle] = targets;
    var names = targets.Select(QualifiedName).ToList();
    if (names.Any(CreatesScalar)) { creators.Add(handle); if (names.Contains("Scalar::Dispose")) disposing++; }
}
if (disposing > 0) throw new InvalidOperationException($"{disposing} creators also dispose a Scalar: review which are safe before listing them");

// Through calls: a method that calls a creator creates a Scalar too.
for (bool grew = true; grew;)
{
    grew = false;
    foreach (var (handle, targets) in callees)
        if (!creators.Contains(handle) && targets.Select(Definition).Any(t => t.Kind == HandleKind.MethodDefinition && creators.Contains((MethodDefinitionHandle)t)))
        { creators.Add(handle); grew = true; }
}

// Documentation ids from Roslyn's view of the same assembly, matched by metadata token.
var compilation = CSharpCompilation.Create("scan", references: [MetadataReference.CreateFromFile(dll), MetadataReference.CreateFromFile(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "System.Private.CoreLib.dll"))]);
var assembly = (IAssemblySymbol)compilation.GetAssemblyOrModuleSymbol(compilation.References.First())!;
var byToken = new Dictionary<int, IMethodSymbol>();
void Collect(INamespaceOrTypeSymbol container)
{
    foreach (var member in container.GetMembers())
    {
        if (member is INamespaceOrTypeSymbol inner) Collect(inner);
        else if (member is IMethodSymbol method) byToken[method.MetadataToken] = method;
    }
}
Collect(assembly.GlobalNamespace);
bool Visible(ISymbol s)
{
    for (var x = s; x is not null and not INamespaceSymbol; x = x.ContainingSymbol)
        if (x.DeclaredAccessibility is not (Accessibility.Public or Accessibility.Protected or Accessibility.ProtectedOrInternal)) return false;
    return true;
}
string Advice(IMethodSymbol m)
{
    bool numberOperand = m.Parameters.Any(p => p.Type.SpecialType is SpecialType.System_Double or SpecialType.System_Single or SpecialType.System_Int32 or SpecialType.System_Int64);
    return (m.MethodKind, m.Name) switch
    {
        (MethodKind.UserDefinedOperator, "op_Addition" or "op_Subtraction") when !numberOperand => "use a.Plus(b) (FixedScalars), or a.add(b, alpha) with a held alpha; a.sub(b) makes no Scalar",
        (MethodKind.UserDefinedOperator, _) => "use the method form with a held Scalar (FixedScalars.Of, or 'using Scalar s = x;')",
        (MethodKind.Conversion, _) => "use tensor.item<T>()",
        (_, "add" or "add_" or "sub" or "sub_" or "addcdiv" or "addcdiv_" or "addcmul" or "addcmul_") => "pass the alpha/value explicitly, held (FixedScalars.Of)",
        (_, "arange") => "use FixedScalars.Arange or the overload taking start, stop and step Scalars that you hold",
        _ => "write it with held Scalars",
    };
}
var lines = new SortedSet<string>(StringComparer.Ordinal);
foreach (var handle in creators)
{
    if (!byToken.TryGetValue(MetadataTokens.GetToken(handle), out var method) || !Visible(method)) continue;
    if (method.ReturnType.ToDisplayString() == "TorchSharp.Scalar") continue; // RD0001 at the call site
    ISymbol symbol = method.AssociatedSymbol ?? method;
    lines.Add($"{symbol.GetDocumentationCommentId()};{Advice(method)}");
}
var version = AssemblyName.GetAssemblyName(dll).Version;
using var output = new StreamWriter(args[1]) { NewLine = "\n" };
output.WriteLine($"# TorchSharp members that create a Scalar internally (rule RD0002 of build/RecDistill.Analyzers).");
output.WriteLine($"# Generated by build/scalar-scan.cs from TorchSharp.dll, assembly version {version}; regenerate when TorchSharp changes.");
output.WriteLine($"# {lines.Count} members; {creators.Count} methods create a Scalar counting internal ones.");
foreach (var line in lines) output.WriteLine(line);
Console.WriteLine($"wrote {lines.Count} members to {args[1]}");
