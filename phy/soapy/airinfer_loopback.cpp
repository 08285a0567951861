// airinfer-loopback: a SoapySDR device module that loops its transmit streams back to its
// receive stream, for hardware-in-the-loop tests of airinfer without hardware.
//
// Device arguments (all optional):
//   tx_channels  number of TX channels, 1..4 (default 1); there is always one RX channel
//   delay        samples between a TX sample and its copy on RX (default 0)
//   gain_db      path gain of the loop, dB (default 0)
//   noise        complex Gaussian noise power added at the RX input (default 0)
//   seed         noise generator seed (default 0)
//
// Model. The device has a virtual clock counted in samples at the (single, shared) sample
// rate; it advances only as RX samples are read (or jumps when RX is activated at a future
// time), so nothing depends on wall-clock speed. Every TX channel is summed into one "air"
// buffer indexed by clock tick, scaled by tx gain + gain_db and shifted by `delay`. An RX read
// returns (air + noise) * rx gain for the next ticks and advances the clock. RX is a
// continuous stream: once active it always returns samples (noise when nothing was sent).
//
// Build: g++ -std=c++17 -shared -fPIC airinfer_loopback.cpp $(pkg-config --cflags --libs SoapySDR)
// Use:   SOAPY_SDR_PLUGIN_PATH=<dir of the .so> SoapySDRUtil --probe="driver=airinfer-loopback"

#include <SoapySDR/Device.hpp>   // SoapySDR::Device, the interface every driver implements
#include <SoapySDR/Registry.hpp> // SoapySDR::Registry, how a module announces its driver
#include <SoapySDR/Modules.hpp>  // SoapySDR::ModuleVersion, shown by SoapySDRUtil --info
#include <SoapySDR/Formats.hpp>  // SOAPY_SDR_CF32, SOAPY_SDR_CS16
#include <SoapySDR/Errors.hpp>   // SOAPY_SDR_TIMEOUT and the other stream return codes
#include <SoapySDR/Time.hpp>     // ticksToTimeNs / timeNsToTicks
#include <SoapySDR/Version.hpp>  // SOAPY_SDR_ABI_VERSION

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

const char *kDriver = "airinfer-loopback";
const size_t kMtu = 4096;          // largest read/write per call, in samples
const size_t kMaxAir = 1u << 24;   // cap on queued samples (a full "TX buffer" times out)
const double kFullScaleCS16 = 32767.0;

using cf = std::complex<float>;

// Our stream handle. SoapySDR::Stream is an opaque type: drivers cast their own struct to it.
struct LoopbackStream {
    int direction;
    bool cs16;                     // wire format CS16 (else CF32)
    std::vector<size_t> channels;
    bool active = false;
};

double argOr(const SoapySDR::Kwargs &args, const char *key, double dflt) {
    auto it = args.find(key);
    if (it == args.end()) return dflt;
    size_t used = 0;
    double v = std::stod(it->second, &used); // throws std::invalid_argument on garbage
    if (used != it->second.size()) throw std::invalid_argument(std::string("bad value for ") + key);
    return v;
}

class LoopbackDevice : public SoapySDR::Device {
public:
    explicit LoopbackDevice(const SoapySDR::Kwargs &args)
        : args_(args) {
        double ntx = argOr(args, "tx_channels", 1), delay = argOr(args, "delay", 0);
        if (ntx < 1 || ntx > 4 || ntx != std::floor(ntx)) throw std::invalid_argument("tx_channels must be 1..4");
        if (delay < 0 || delay != std::floor(delay) || delay > 1e7) throw std::invalid_argument("delay must be 0..1e7 samples");
        noise_ = argOr(args, "noise", 0);
        if (!(noise_ >= 0)) throw std::invalid_argument("noise must be >= 0");
        ntx_ = size_t(ntx);
        delay_ = size_t(delay);
        loopGainDb_ = argOr(args, "gain_db", 0);
        double seed = argOr(args, "seed", 0);
        if (!(seed >= 0 && seed < 9e15)) throw std::invalid_argument("seed must be a non-negative integer");
        rng_.seed(uint64_t(seed));
        freq_.assign(ntx_ + 1, 2.45e9);
        gainDb_.assign(ntx_ + 1, 0.0);
    }

    // ---- identification (SoapySDRUtil --probe prints these) ----
    std::string getDriverKey() const override { return kDriver; }
    std::string getHardwareKey() const override { return "loopback"; }
    SoapySDR::Kwargs getHardwareInfo() const override { return args_; }

    // ---- channels and formats ----
    size_t getNumChannels(const int dir) const override { return dir == SOAPY_SDR_TX ? ntx_ : 1; }
    bool getFullDuplex(const int, const size_t) const override { return true; }
    std::vector<std::string> getStreamFormats(const int, const size_t) const override {
        return {SOAPY_SDR_CF32, SOAPY_SDR_CS16};
    }
    std::string getNativeStreamFormat(const int, const size_t, double &fullScale) const override {
        fullScale = 1.0;
        return SOAPY_SDR_CF32;
    }

    // ---- gain (dB, applied as amplitude 10^(dB/20)); one overall gain per channel ----
    using SoapySDR::Device::setGain; // keep the named-element overloads visible
    using SoapySDR::Device::getGain;
    using SoapySDR::Device::getGainRange;
    void setGain(const int dir, const size_t ch, const double db) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (!std::isfinite(db) || db < -100 || db > 100) throw std::out_of_range("gain must be -100..100 dB");
        gainDb_.at(slot(dir, ch)) = db;
    }
    double getGain(const int dir, const size_t ch) const override {
        std::lock_guard<std::mutex> lock(mu_);
        return gainDb_.at(slot(dir, ch));
    }
    SoapySDR::Range getGainRange(const int, const size_t) const override { return SoapySDR::Range(-100, 100); }

    // ---- frequency: stored only, the loop has no RF ----
    using SoapySDR::Device::setFrequency;
    using SoapySDR::Device::getFrequency;
    using SoapySDR::Device::getFrequencyRange;
    void setFrequency(const int dir, const size_t ch, const double hz, const SoapySDR::Kwargs &) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (!(hz >= 0 && hz <= 10e9)) throw std::out_of_range("frequency must be 0..10 GHz");
        freq_.at(slot(dir, ch)) = hz;
    }
    double getFrequency(const int dir, const size_t ch) const override {
        std::lock_guard<std::mutex> lock(mu_);
        return freq_.at(slot(dir, ch));
    }
    SoapySDR::RangeList getFrequencyRange(const int, const size_t) const override { return {SoapySDR::Range(0, 10e9)}; }

    // ---- sample rate: one rate for the whole device (TX and RX must agree for a loop) ----
    void setSampleRate(const int, const size_t, const double rate) override {
        std::lock_guard<std::mutex> lock(mu_);
        if (!(rate >= 1e3 && rate <= 100e6)) throw std::out_of_range("sample rate must be 1 kS/s..100 MS/s");
        now_ = SoapySDR::timeNsToTicks(SoapySDR::ticksToTimeNs(now_, rate_), rate); // keep the time
        rate_ = rate;
        air_.clear(); // queued samples were at the old rate
        txCursor_ = -1;
    }
    double getSampleRate(const int, const size_t) const override {
        std::lock_guard<std::mutex> lock(mu_);
        return rate_;
    }
    SoapySDR::RangeList getSampleRateRange(const int, const size_t) const override { return {SoapySDR::Range(1e3, 100e6)}; }

    // ---- hardware time: the virtual clock, in ns ----
    bool hasHardwareTime(const std::string &what) const override { return what.empty(); }
    long long getHardwareTime(const std::string &) const override {
        std::lock_guard<std::mutex> lock(mu_);
        return SoapySDR::ticksToTimeNs(now_, rate_);
    }
    void setHardwareTime(const long long timeNs, const std::string &) override {
        std::lock_guard<std::mutex> lock(mu_);
        now_ = SoapySDR::timeNsToTicks(timeNs, rate_);
        air_.clear(); // a time jump drops whatever was in flight
        txCursor_ = -1;
    }

    // ---- streams ----
    SoapySDR::Stream *setupStream(const int dir, const std::string &format,
                                  const std::vector<size_t> &channels, const SoapySDR::Kwargs &) override {
        if (format != SOAPY_SDR_CF32 && format != SOAPY_SDR_CS16)
            throw std::runtime_error("airinfer-loopback streams CF32 or CS16, not " + format);
        auto *s = new LoopbackStream{dir, format == SOAPY_SDR_CS16, channels.empty() ? std::vector<size_t>{0} : channels};
        for (size_t ch : s->channels) {
            if (ch >= getNumChannels(dir)) {
                delete s;
                throw std::out_of_range("no such channel");
            }
        }
        return reinterpret_cast<SoapySDR::Stream *>(s);
    }
    void closeStream(SoapySDR::Stream *stream) override { delete reinterpret_cast<LoopbackStream *>(stream); }
    size_t getStreamMTU(SoapySDR::Stream *) const override { return kMtu; }

    // RX may be activated at a future time (flags & SOAPY_SDR_HAS_TIME): the clock jumps there.
    int activateStream(SoapySDR::Stream *stream, const int flags, const long long timeNs, const size_t numElems) override {
        auto *s = reinterpret_cast<LoopbackStream *>(stream);
        std::lock_guard<std::mutex> lock(mu_);
        if (numElems != 0) return SOAPY_SDR_NOT_SUPPORTED; // no finite RX bursts
        if (s->direction == SOAPY_SDR_RX && (flags & SOAPY_SDR_HAS_TIME)) {
            long long t = SoapySDR::timeNsToTicks(timeNs, rate_);
            if (t < now_) return SOAPY_SDR_TIME_ERROR;
            skip(size_t(t - now_));
        }
        s->active = true;
        return 0;
    }
    int deactivateStream(SoapySDR::Stream *stream, const int, const long long) override {
        reinterpret_cast<LoopbackStream *>(stream)->active = false;
        return 0;
    }

    int readStream(SoapySDR::Stream *stream, void *const *buffs, const size_t numElems, int &flags,
                   long long &timeNs, const long timeoutUs) override {
        auto *s = reinterpret_cast<LoopbackStream *>(stream);
        if (s->direction != SOAPY_SDR_RX) return SOAPY_SDR_STREAM_ERROR;
        if (!s->active) { // documented contract: an inactive stream waits out the timeout
            std::this_thread::sleep_for(std::chrono::microseconds(std::max(0L, timeoutUs)));
            return SOAPY_SDR_TIMEOUT;
        }
        std::lock_guard<std::mutex> lock(mu_);
        const size_t n = std::min(numElems, kMtu);
        const float amp = float(std::pow(10.0, gainDb_[ntx_] / 20.0)); // slot ntx_ is RX 0
        std::normal_distribution<float> gauss(0.0f, float(std::sqrt(noise_ / 2.0)));
        flags = SOAPY_SDR_HAS_TIME; // timeNs is the time of buffs[0][0]
        timeNs = SoapySDR::ticksToTimeNs(now_, rate_);
        for (size_t i = 0; i < n; i++) {
            cf x(0.0f, 0.0f);
            if (!air_.empty()) { x = air_.front(); air_.pop_front(); }
            if (noise_ > 0) x += cf(gauss(rng_), gauss(rng_));
            x *= amp;
            if (s->cs16) {
                auto *out = static_cast<int16_t *>(buffs[0]) + 2 * i;
                out[0] = toS16(x.real());
                out[1] = toS16(x.imag());
            } else {
                static_cast<cf *>(buffs[0])[i] = x;
            }
        }
        now_ += (long long)n;
        return int(n);
    }

    // A write without SOAPY_SDR_HAS_TIME continues the current burst, or starts "now" (at the
    // next RX sample) after SOAPY_SDR_END_BURST. All channels of one write are summed.
    int writeStream(SoapySDR::Stream *stream, const void *const *buffs, const size_t numElems, int &flags,
                    const long long timeNs, const long timeoutUs) override {
        auto *s = reinterpret_cast<LoopbackStream *>(stream);
        if (s->direction != SOAPY_SDR_TX || !s->active) return SOAPY_SDR_STREAM_ERROR;
        std::unique_lock<std::mutex> lock(mu_);
        long long start = (flags & SOAPY_SDR_HAS_TIME) ? SoapySDR::timeNsToTicks(timeNs, rate_)
                          : txCursor_ >= 0 ? txCursor_ : now_;
        if (start < now_) { txCursor_ = -1; return SOAPY_SDR_TIME_ERROR; } // late
        const size_t at = size_t(start - now_) + delay_; // index into air_
        if (at >= kMaxAir) { // "TX buffer full": nothing drains it until RX reads
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::microseconds(std::max(0L, timeoutUs)));
            return SOAPY_SDR_TIMEOUT;
        }
        const size_t n = std::min({numElems, kMtu, kMaxAir - at});
        if (air_.size() < at + n) air_.resize(at + n, cf(0.0f, 0.0f));
        const float amp = float(std::pow(10.0, loopGainDb_ / 20.0));
        for (size_t c = 0; c < s->channels.size(); c++) {
            const float a = amp * float(std::pow(10.0, gainDb_[s->channels[c]] / 20.0));
            for (size_t i = 0; i < n; i++) {
                cf x = s->cs16 ? cf(float(static_cast<const int16_t *>(buffs[c])[2 * i] / kFullScaleCS16),
                                    float(static_cast<const int16_t *>(buffs[c])[2 * i + 1] / kFullScaleCS16))
                               : static_cast<const cf *>(buffs[c])[i];
                air_[at + i] += a * x;
            }
        }
        // SoapySDR convention: END_BURST only takes effect if the whole buffer was consumed.
        if (n < numElems) flags &= ~SOAPY_SDR_END_BURST;
        txCursor_ = (flags & SOAPY_SDR_END_BURST) ? -1 : start + (long long)n;
        return int(n);
    }

private:
    // gains and frequencies are kept per channel: TX channels 0..ntx-1, then RX 0 at ntx_
    size_t slot(const int dir, const size_t ch) const {
        if (ch >= getNumChannels(dir)) throw std::out_of_range("no such channel");
        return dir == SOAPY_SDR_TX ? ch : ntx_;
    }
    void skip(size_t n) { // advance the clock by n ticks without delivering samples
        air_.erase(air_.begin(), air_.begin() + std::min(n, air_.size()));
        now_ += (long long)n;
    }
    static int16_t toS16(float v) {
        return int16_t(std::lround(std::clamp(double(v) * kFullScaleCS16, -32768.0, 32767.0)));
    }

    SoapySDR::Kwargs args_;
    size_t ntx_ = 1, delay_ = 0;
    double noise_ = 0, loopGainDb_ = 0;
    mutable std::mutex mu_; // guards everything below
    std::mt19937_64 rng_;
    double rate_ = 1e6;
    std::vector<double> freq_, gainDb_;
    long long now_ = 0;        // virtual clock: tick of the next RX sample
    long long txCursor_ = -1;  // tick where the next untimed TX write goes, -1 = not in a burst
    std::deque<cf> air_;       // air_[i] = signal at the RX input at tick now_ + i
};

// Find function: SoapySDR::Device::enumerate calls it with the user's filter. We answer only
// when asked for our driver by name, so a plain enumerate("") never picks the loopback over
// real hardware. The result echoes the user's args because SoapySDR 0.8's Device::make keys
// its table of open devices by the find result: equal results share one device instance.
// So each distinct arg set is its own loopback (add e.g. id=... to get a private one), and
// opening the same args twice gives the same device, as with real hardware.
SoapySDR::KwargsList findLoopback(const SoapySDR::Kwargs &args) {
    auto it = args.find("driver");
    if (it == args.end() || it->second != kDriver) return {};
    SoapySDR::Kwargs dev = args;
    dev["label"] = "airinfer loopback";
    return {dev}; // Device::make adds any user arg missing here, then calls make
}

// Make function: construct the device; an exception here becomes the make() error.
SoapySDR::Device *makeLoopback(const SoapySDR::Kwargs &args) { return new LoopbackDevice(args); }

} // namespace

// Static registration runs when SoapySDR dlopen()s the module from its search path
// (or SOAPY_SDR_PLUGIN_PATH). SOAPY_SDR_ABI_VERSION makes the loader reject a module built
// against another ABI.
static SoapySDR::Registry registerLoopback(kDriver, &findLoopback, &makeLoopback, SOAPY_SDR_ABI_VERSION);
static SoapySDR::ModuleVersion registerVersion("0.1.0");
