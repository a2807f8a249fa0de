// Procwire.cs: the functions of procwire.h that the C# samples call, declared for P/Invoke
// as the seed's "Sample Code 4 (C# - P/Invoke)" declares kernel32's. The library is
// libprocwire_ffi.so, found on LD_LIBRARY_PATH.
using System;
using System.Runtime.InteropServices;

static class Procwire
{
    const string Lib = "procwire_ffi";

    public const int StatusOk = 0;
    public const long WaitForever = -1;
    public const uint AccessRead = 1;
    public const uint AccessReadWrite = 3;
    public const uint PipeModeByte = 0;
    public const uint PipeModeMessage = 1;

    // ProcwireClientOptions, field for field.
    [StructLayout(LayoutKind.Sequential)]
    public struct ClientOptions
    {
        public uint Access;
        public uint ReadMode;
        public uint TimeoutMs;
        public uint MaxMessageSize;
        [MarshalAs(UnmanagedType.U1)] public bool SharedMemory;
        public long RequireOwner;
    }

    [DllImport(Lib)] public static extern IntPtr procwire_last_error_message();
    [DllImport(Lib)] public static extern IntPtr procwire_status_name(int status);
    [DllImport(Lib)] public static extern void procwire_bytes_free(IntPtr data, UIntPtr len);

    [DllImport(Lib)] public static extern int procwire_client_options_init(out ClientOptions options);
    [DllImport(Lib)] public static extern int procwire_pipe_open(string name, ref ClientOptions options, out IntPtr connection);
    [DllImport(Lib)] public static extern int procwire_pipe_send(IntPtr connection, byte[] data, UIntPtr len);
    [DllImport(Lib)] public static extern int procwire_pipe_recv(IntPtr connection, long timeoutMs, out IntPtr data, out UIntPtr len);
    [DllImport(Lib)] public static extern int procwire_pipe_connection_free(IntPtr connection);

    [DllImport(Lib)] public static extern int procwire_mapping_open(string name, uint access, out IntPtr mapping);
    [DllImport(Lib)] public static extern IntPtr procwire_mapping_ptr(IntPtr mapping);
    [DllImport(Lib)] public static extern UIntPtr procwire_mapping_len(IntPtr mapping);
    [DllImport(Lib)] public static extern int procwire_mapping_read(IntPtr mapping, UIntPtr offset, byte[] buf, UIntPtr len);
    [DllImport(Lib)] public static extern int procwire_mapping_free(IntPtr mapping);

    // Throws unless `status` is PROCWIRE_STATUS_OK, with the library's message.
    public static void Check(int status, string call)
    {
        if (status != StatusOk)
        {
            string name = Marshal.PtrToStringAnsi(procwire_status_name(status));
            string message = Marshal.PtrToStringAnsi(procwire_last_error_message());
            throw new Exception(call + ": " + name + ": " + message);
        }
    }

    // Receives one message as bytes, freeing the library's buffer.
    public static byte[] Recv(IntPtr connection, long timeoutMs)
    {
        IntPtr data;
        UIntPtr len;
        Check(procwire_pipe_recv(connection, timeoutMs, out data, out len), "procwire_pipe_recv");
        var message = new byte[(int)len.ToUInt64()];
        Marshal.Copy(data, message, 0, message.Length);
        procwire_bytes_free(data, len);
        return message;
    }
}
