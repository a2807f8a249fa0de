// procwire.hpp: a few lines of C++17 over procwire.h shared by the samples: a status
// check that throws, and owning pointers that call the right _free function.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "procwire.h"

namespace procwire {

// The failure of a procwire call: its status code and the library's message.
class Error : public std::runtime_error {
public:
    Error(ProcwireStatus status, const std::string& what)
        : std::runtime_error(what), status_(status) {}
    ProcwireStatus status() const { return status_; }

private:
    ProcwireStatus status_;
};

// Throws Error unless `status` is PROCWIRE_STATUS_OK; `what` says which call it was.
inline void check(ProcwireStatus status, const char* what) {
    if (status != PROCWIRE_STATUS_OK) {
        throw Error(status, std::string(what) + ": " + procwire_status_name(status) + ": " +
                                procwire_last_error_message());
    }
}

template <typename T, ProcwireStatus (*Free)(T*)>
struct Deleter {
    void operator()(T* handle) const { Free(handle); }
};

using PipeServer = std::unique_ptr<ProcwirePipeServer,
                                   Deleter<ProcwirePipeServer, procwire_pipe_server_free>>;
using PipeConnection =
    std::unique_ptr<ProcwirePipeConnection,
                    Deleter<ProcwirePipeConnection, procwire_pipe_connection_free>>;
using Mapping =
    std::unique_ptr<ProcwireMapping, Deleter<ProcwireMapping, procwire_mapping_free>>;
// A handle the peer passed (procwire_pipe_recv_handle): take its object out with the
// procwire_passed_handle_into_* call of its kind; the PassedHandle itself is freed still.
using PassedHandle =
    std::unique_ptr<ProcwirePassedHandle,
                    Deleter<ProcwirePassedHandle, procwire_passed_handle_free>>;
using Mailslot =
    std::unique_ptr<ProcwireMailslot, Deleter<ProcwireMailslot, procwire_mailslot_free>>;
using MailslotWriter =
    std::unique_ptr<ProcwireMailslotWriter,
                    Deleter<ProcwireMailslotWriter, procwire_mailslot_writer_free>>;

// Bytes the library handed out, freed with procwire_bytes_free.
class Bytes {
public:
    Bytes() = default;
    Bytes(const Bytes&) = delete;
    Bytes& operator=(const Bytes&) = delete;
    ~Bytes() { procwire_bytes_free(data_, len_); }
    uint8_t** data_out() { return &data_; }
    size_t* len_out() { return &len_; }
    std::string str() const { return std::string(reinterpret_cast<const char*>(data_), len_); }
    size_t size() const { return len_; }

private:
    uint8_t* data_ = nullptr;
    size_t len_ = 0;
};

}  // namespace procwire
