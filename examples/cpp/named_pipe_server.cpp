// CppNamedPipeServer: creates the pipe \\.\pipe\HelloWorld, waits for a client, reads its
// request and answers "Default response from server".
//
// Usage: named_pipe_server [NAME [message|byte]]
#include <cstdio>
#include <cstring>
#include <string>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "\\\\.\\pipe\\HelloWorld";
    const bool byte_mode = argc > 2 && std::strcmp(argv[2], "byte") == 0;

    ProcwirePipeOptions options;
    procwire::check(procwire_pipe_options_init(&options), "procwire_pipe_options_init");
    options.mode = byte_mode ? PROCWIRE_PIPE_MODE_BYTE : PROCWIRE_PIPE_MODE_MESSAGE;
    options.max_instances = 4;
    ProcwirePipeServer* raw_server = nullptr;
    procwire::check(procwire_pipe_server_create(name, &options, &raw_server),
                    "procwire_pipe_server_create");
    procwire::PipeServer server(raw_server);
    std::printf("The named pipe (%s) is created.\n", procwire_pipe_server_name(server.get()));
    std::printf("Waiting for the client's connection...\n");
    std::fflush(stdout);

    ProcwirePipeConnection* raw_client = nullptr;
    procwire::check(procwire_pipe_server_accept(server.get(), PROCWIRE_WAIT_FOREVER, &raw_client),
                    "procwire_pipe_server_accept");
    procwire::PipeConnection client(raw_client);
    ProcwirePeerCredentials peer;
    if (procwire_pipe_peer_credentials(client.get(), &peer)) {
        std::printf("Client connected: pid %u, uid %u.\n", peer.pid, peer.uid);
    }

    std::string request;
    if (byte_mode) {
        // A byte stream has no message boundaries: read until the client finishes sending.
        char buffer[512];
        for (;;) {
            size_t got = 0;
            procwire::check(procwire_pipe_read(client.get(), reinterpret_cast<uint8_t*>(buffer),
                                               sizeof buffer, &got),
                            "procwire_pipe_read");
            if (got == 0) break;
            request.append(buffer, got);
        }
    } else {
        procwire::Bytes message;
        procwire::check(procwire_pipe_recv(client.get(), PROCWIRE_WAIT_FOREVER,
                                           message.data_out(), message.len_out()),
                        "procwire_pipe_recv");
        request = message.str();
    }
    std::printf("Receive %zu bytes from client: \"%s\"\n", request.size(), request.c_str());

    const std::string response = "Default response from server";
    procwire::check(procwire_pipe_send(client.get(),
                                       reinterpret_cast<const uint8_t*>(response.data()),
                                       response.size()),
                    "procwire_pipe_send");
    std::printf("Send %zu bytes to client: \"%s\"\n", response.size(), response.c_str());
    client.reset();
    std::printf("The client is disconnected; the server is closing the pipe.\n");
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
