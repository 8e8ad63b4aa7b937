/* Band-energy analysis for the psychoacoustic EQ: Welch's averaged periodogram
 * (periodic Hann, 50 % overlap, no detrending), window-energy compensated, pooled
 * over channels and averaged over each of the 25 Bark bands of psy_eq.h.  A sink:
 * it streams block by block (segments aligned to the absolute frame count) and is
 * read between blocks.  Meant for the background worker; process() does not
 * allocate, but its cost is uneven (one FFT per channel every fft_size/2 frames). */
#ifndef RT_PSY_ANALYSIS_H
#define RT_PSY_ANALYSIS_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_psy_analysis rt_psy_analysis;
/* FFT size: the smallest power of two >= sample_rate / 4 (bins <= 4 Hz, so the
 * 80 Hz wide first band gets 20 bins or more).  NULL on bad arguments. */
rt_psy_analysis *rt_psy_analysis_create(uint32_t channels, double sample_rate);
void rt_psy_analysis_destroy(rt_psy_analysis *a);
void rt_psy_analysis_reset(rt_psy_analysis *a);
uint32_t rt_psy_analysis_process(rt_psy_analysis *a, const float *const *in, uint32_t frames);
uint32_t rt_psy_analysis_latency(const rt_psy_analysis *a);
uint32_t rt_psy_analysis_fft_size(const rt_psy_analysis *a);
/* Mean one-sided PSD (full-scale^2 per Hz) over the bins of each band, averaged over
 * the complete segments so far and over channels; 0 for bands above Nyquist.
 * Returns the number of segments averaged; with 0, dest is left untouched. */
uint64_t rt_psy_analysis_band_psd(const rt_psy_analysis *a, double *dest);
/* Mean square of every sample seen (all channels), for the silence decision. */
double rt_psy_analysis_mean_square(const rt_psy_analysis *a);
/* cffi:end */
#endif
