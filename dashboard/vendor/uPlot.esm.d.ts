// Types of the uPlot ES module copied beside the dashboard's scripts (dashboard/copyAssets.mjs).
import uPlot from 'uplot';
export default uPlot;
